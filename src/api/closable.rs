//! Connections the node can close when a graceful stop takes too long.
//!
//! A graceful stop waits for every connection to finish its calls. A
//! subscriber that stopped reading never finishes: HTTP/2 flow control
//! holds back the rest of its stream, so the server would wait forever and
//! the node would never exit. Every accepted connection is therefore
//! wrapped in a [`Closable`]: once the stop's grace period is over, its
//! reads and writes fail, hyper drops the connection, and the stop goes on
//! (subscribers resume from their last cursor, as after any disconnect).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A TCP connection that fails its I/O once `close` turns true.
pub struct Closable {
    io: TcpStream,
    /// Resolves when the node closes every connection; `None` once it has
    /// (a finished future must not be polled again). Polled before each
    /// read and write, so it holds the connection task's waker and wakes
    /// it when the close comes, even while hyper waits on flow control.
    close: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Closable {
    pub fn new(io: TcpStream, mut close: watch::Receiver<bool>) -> Closable {
        let close = Box::pin(async move {
            if close.wait_for(|closed| *closed).await.is_err() {
                // No one can close the connections any more: never close.
                std::future::pending::<()>().await;
            }
        });
        Closable {
            io,
            close: Some(close),
        }
    }

    /// `Err` once the connection is closed.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(close) = &mut self.close
            && close.as_mut().poll(cx).is_ready()
        {
            self.close = None;
        }
        match self.close {
            Some(_) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the node is stopping and its grace period is over",
            )),
        }
    }
}

impl AsyncRead for Closable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Closable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Connected for Closable {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}
