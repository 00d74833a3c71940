//! A throw-away PostgreSQL server for tests and benches: `initdb` in a
//! fresh directory, `pg_ctl start` on 127.0.0.1 and a free port, stopped
//! and deleted on drop, or at the latest a second after the process that
//! started it exits (a detached reaper: servers kept in a `static` are
//! never dropped).
//!
//! Uses Debian's packages (`apt-get install -y postgresql`; `.ci/run`
//! installs them). `initdb` refuses to run as root, so as root every
//! server command runs as the `postgres` user (`runuser -u postgres --`)
//! and the directory is given to that user.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// A running local server; stopped (immediately) and deleted on drop.
pub struct LocalPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl LocalPostgres {
    /// Creates a cluster in a new temporary directory and starts it, with
    /// a database named `handoff`.
    pub fn start() -> Result<LocalPostgres> {
        let bin = bin_dir()?;
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "handoff-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0;
        let mut pg = LocalPostgres {
            bin,
            dir,
            port: free_port()?,
            as_postgres,
            running: false,
        };
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .context("chown")?;
            if !status.success() {
                bail!("cannot give {} to the postgres user", pg.dir.display());
            }
        }
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        pg.start_again()?;
        pg.reap_after_exit()?;
        pg.psql("postgres", "CREATE DATABASE handoff")?;
        Ok(pg)
    }

    /// Stops and deletes the server once this process is gone, even when
    /// it never drops its `LocalPostgres` (a server in a `static`, shared
    /// by a test binary's tests, is never dropped; a test killed by a
    /// timeout drops nothing). A detached shell polls for this process
    /// once a second; after a normal drop it finds nothing left to do.
    fn reap_after_exit(&self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
             {as_user}\"$2\" -D \"$3\" -m immediate stop >/dev/null 2>&1; rm -rf \"$4\""
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("handoff-pg-reaper")
            .arg(std::process::id().to_string())
            .arg(&pg_ctl)
            .arg(self.data_dir())
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the reaper of the test PostgreSQL")?;
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `--store`: the `handoff` database (or `db`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates another database (one per test keeps tests apart).
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Runs SQL on database `db`; returns what it printed (unaligned).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server (`pg_ctl stop -m immediate`: like a crash, the
    /// next start recovers from its WAL).
    pub fn stop(&mut self) -> Result<()> {
        if self.running {
            let data = self.data_dir();
            self.run(
                "pg_ctl",
                &["-D", path_str(&data)?, "-m", "immediate", "-w", "stop"],
            )?;
            self.running = false;
        }
        Ok(())
    }

    /// Starts the server (again) on the same port.
    pub fn start_again(&mut self) -> Result<()> {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=300",
            self.port,
            path_str(&self.dir)?
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            bail!(
                "{tool} {} failed: {}{}\nserver log:\n{log}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where Debian keeps the server's programs: the newest
/// `/usr/lib/postgresql/*/bin`, or `pg_config --bindir`.
pub(crate) fn bin_dir() -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if bin.join("initdb").exists() {
            return Ok(bin);
        }
    }
    bail!(
        "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/*/bin/initdb): \
         apt-get install -y postgresql"
    )
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}
