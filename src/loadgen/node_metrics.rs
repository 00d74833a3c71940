//! The node's memory and disk, read from its Prometheus endpoint while the
//! load runs: loadgen drives a node it does not own (maybe in another
//! container), so it asks the node rather than `/proc`.
//!
//! The node publishes `handoff_process_resident_bytes` and
//! `handoff_store_disk_bytes` (see `crate::metrics`); this samples them a
//! few times a second, keeping the peak of the first and the last of the
//! second. A plain HTTP/1.0 GET is all it takes: no HTTP client crate.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The gauge of the node's resident memory.
pub const RSS_GAUGE: &str = "handoff_process_resident_bytes";
/// The gauge of the node's store size on disk.
pub const DISK_GAUGE: &str = "handoff_store_disk_bytes";

/// What the samples showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeUsage {
    pub peak_rss_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub samples: u32,
    /// Why nothing could be read, if nothing could.
    pub problem: Option<String>,
}

/// A sampler running in the background.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<NodeUsage>,
}

impl Sampler {
    pub fn start(addr: String, every: Duration) -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut usage = NodeUsage::default();
            loop {
                sample(&addr, &mut usage).await;
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
            // One last look: the disk after the run.
            sample(&addr, &mut usage).await;
            usage
        });
        Sampler { stop, task }
    }

    pub async fn stop(self) -> NodeUsage {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

async fn sample(addr: &str, usage: &mut NodeUsage) {
    match scrape(addr).await {
        Ok(text) => {
            usage.samples += 1;
            if let Some(rss) = gauge(&text, RSS_GAUGE) {
                usage.peak_rss_bytes = Some(usage.peak_rss_bytes.map_or(rss, |p| p.max(rss)));
            }
            if let Some(disk) = gauge(&text, DISK_GAUGE) {
                usage.disk_bytes = Some(disk);
            }
            if usage.peak_rss_bytes.is_none() && usage.problem.is_none() {
                usage.problem = Some(format!(
                    "the metrics at http://{addr}/metrics have no {RSS_GAUGE}: is that a handoff node?"
                ));
            }
        }
        Err(e) => {
            if usage.samples == 0 && usage.problem.is_none() {
                usage.problem = Some(format!(
                    "cannot read the node's metrics at http://{addr}/metrics ({e}); pass --metrics with the node's metrics address"
                ));
            }
        }
    }
}

/// `GET /metrics` over HTTP/1.0 (so the body is neither chunked nor kept
/// alive); the body.
pub async fn scrape(addr: &str) -> std::io::Result<String> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 5 s"))??;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or(&text);
    Ok(body.to_owned())
}

/// The value of an unlabelled (or first labelled) sample of `name`.
pub fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let value = if rest.starts_with('{') {
            rest.split_once('}')?.1
        } else if rest.starts_with(' ') {
            rest
        } else {
            return None;
        };
        let v: f64 = value.split_whitespace().next()?.parse().ok()?;
        Some(v.max(0.0) as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_read_from_prometheus_text() {
        let text = "# HELP x\n# TYPE handoff_process_resident_bytes gauge\n\
                    handoff_process_resident_bytes 123456789\n\
                    handoff_process_resident_bytes_total 1\n\
                    handoff_store_disk_bytes{node=\"a\"} 4.5e6\n";
        assert_eq!(gauge(text, RSS_GAUGE), Some(123_456_789));
        assert_eq!(gauge(text, DISK_GAUGE), Some(4_500_000));
        assert_eq!(gauge(text, "handoff_missing"), None);
    }
}
