//! A throw-away PostgreSQL cluster under Patroni, for failover tests: one
//! etcd and N PostgreSQL instances on 127.0.0.1 (each with its own port
//! and its own Patroni REST API port), in `synchronous_mode`, so a commit
//! the primary acknowledged is on the synchronous standby, and Patroni
//! promotes only that standby. Everything lives in a fresh temporary
//! directory, runs as the `postgres` user when started as root (`initdb`
//! refuses root), and is killed and deleted on drop.
//!
//! Uses Debian's packages: `apt-get install -y patroni etcd-server`
//! (Patroni 3.x, talking to etcd 3.4 through its v3 API) and `postgresql`.
//! Patroni's timings are shortened for tests (leader key TTL 10 s, HA loop
//! every 2 s): a primary that crashes with its Patroni is replaced in about
//! 10 s, once its leader key has expired.
//!
//! Nothing here is part of the node: the nodes only see the multi-host URL
//! ([`PatroniCluster::url`]) and follow the primary with
//! `target_session_attrs=read-write`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::postgres::{bin_dir, free_port, path_str};

/// How long Patroni's leader key lives without renewal (seconds).
const TTL: u32 = 10;
/// How often each Patroni runs its HA loop (seconds).
const LOOP_WAIT: u32 = 2;
/// How long Patroni retries etcd and PostgreSQL before it gives up on a
/// loop (seconds); `LOOP_WAIT + 2 * RETRY_TIMEOUT <= TTL`.
const RETRY_TIMEOUT: u32 = 3;
/// Longest the cluster may take to bootstrap (initdb, base backups).
const READY_WITHIN: Duration = Duration::from_secs(120);

/// A running etcd and Patroni cluster; killed and deleted on drop.
pub struct PatroniCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// `(uid, gid)` of the `postgres` user when run as root.
    user: Option<(u32, u32)>,
    etcd: Mutex<Option<Child>>,
    members: Vec<Member>,
}

struct Member {
    name: String,
    /// PostgreSQL's port on 127.0.0.1.
    port: u16,
    /// Patroni's REST API port on 127.0.0.1.
    api: u16,
    dir: PathBuf,
    /// `None` once killed.
    patroni: Mutex<Option<Child>>,
}

/// A member as Patroni's `/cluster` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    /// The member's index (as in [`PatroniCluster::port`]).
    pub index: usize,
    pub name: String,
    /// `leader`, `sync_standby`, `replica`, ...
    pub role: String,
    /// `running`, `streaming`, `starting`, `stopped`, ...
    pub state: String,
    pub timeline: Option<u64>,
}

impl PatroniCluster {
    /// Starts etcd and `members` (2 to 5) Patroni-managed PostgreSQL
    /// instances in synchronous mode, waits until there is a leader and a
    /// synchronous standby and every member runs, and creates the database
    /// `handoff` on the leader.
    ///
    /// `strict` sets `synchronous_mode_strict`: the primary then never
    /// commits without a synchronous standby (writes block instead),
    /// which also covers a second failure right after a failover.
    pub fn start(members: usize, strict: bool) -> Result<PatroniCluster> {
        if !(2..=5).contains(&members) {
            bail!("a Patroni test cluster has 2 to 5 members, not {members}");
        }
        let (patroni, etcd) = match (find_exe("patroni"), find_exe("etcd")) {
            (Some(p), Some(e)) => (p, e),
            (p, e) => bail!(
                "Patroni and etcd are needed for this test ({} missing): \
                 apt-get install -y patroni etcd-server",
                [(p.is_none(), "patroni"), (e.is_none(), "etcd")]
                    .iter()
                    .filter(|(missing, _)| *missing)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        let bin = bin_dir()?;
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "handoff-patroni-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0;
        let user = if root { Some(postgres_user()?) } else { None };

        let mut ports = Ports::default();
        let (etcd_client, etcd_peer) = (ports.next()?, ports.next()?);
        let mut cluster = PatroniCluster {
            dir,
            bin,
            user,
            etcd: Mutex::new(None),
            members: Vec::new(),
        };
        for i in 0..members {
            let name = format!("pg{i}");
            let mdir = cluster.dir.join(&name);
            std::fs::create_dir_all(&mdir)?;
            cluster.members.push(Member {
                name,
                port: ports.next()?,
                api: ports.next()?,
                dir: mdir,
                patroni: Mutex::new(None),
            });
        }
        for m in &cluster.members {
            let yaml = cluster.config(m, etcd_client, strict)?;
            std::fs::write(m.dir.join("patroni.yml"), yaml)?;
        }
        cluster.give_to_user(&cluster.dir)?;

        // From here on, drop cleans up whatever started.
        let etcd_data = cluster.dir.join("etcd");
        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let mut cmd = Command::new(&etcd);
        cmd.arg("--name")
            .arg("e0")
            .arg("--data-dir")
            .arg(&etcd_data)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .arg("--initial-cluster")
            .arg(format!("e0={peer_url}"))
            .args(["--logger", "zap", "--log-level", "warn"]);
        let child = cluster.spawn(cmd, &cluster.dir.join("etcd.log"))?;
        *lock(&cluster.etcd) = Some(child);
        wait_until(
            Duration::from_secs(30),
            || matches!(http_get(etcd_client, "/health"), Ok((200, body)) if body.contains("true")),
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "etcd did not become healthy within 30 s:\n{}",
                tail(&cluster.dir.join("etcd.log"))
            )
        })?;

        for m in &cluster.members {
            let mut cmd = Command::new(&patroni);
            cmd.arg(m.dir.join("patroni.yml"))
                .env_remove("PYTHONPATH")
                .env_remove("PYTHONHOME");
            let child = cluster.spawn(cmd, &m.dir.join("patroni.log"))?;
            *lock(&m.patroni) = Some(child);
        }
        let ready = wait_until(READY_WITHIN, || {
            let Ok(states) = cluster.members_state() else {
                return false;
            };
            let up = |s: &MemberState| matches!(s.state.as_str(), "running" | "streaming");
            states.len() == members
                && states.iter().all(up)
                && states.iter().any(|s| s.role == "leader")
                && states.iter().any(|s| s.role == "sync_standby")
        });
        if ready.is_err() {
            bail!(
                "the Patroni cluster had no leader, synchronous standby and running members \
                 within {} s (last seen: {:?})\n{}",
                READY_WITHIN.as_secs(),
                cluster.members_state().ok(),
                cluster.logs()
            );
        }
        let leader = cluster.primary()?;
        cluster.psql(leader, "postgres", "CREATE DATABASE handoff")?;
        Ok(cluster)
    }

    /// The Patroni configuration of member `m`.
    fn config(&self, m: &Member, etcd_client: u16, strict: bool) -> Result<String> {
        let dir = path_str(&m.dir)?;
        let bin = path_str(&self.bin)?;
        Ok(format!(
            "scope: handoff
name: {name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
etcd3:
  hosts: 127.0.0.1:{etcd_client}
bootstrap:
  dcs:
    ttl: {TTL}
    loop_wait: {LOOP_WAIT}
    retry_timeout: {RETRY_TIMEOUT}
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: {strict}
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
        max_connections: 300
        wal_retrieve_retry_interval: 500ms
  initdb:
    - encoding: UTF8
    - locale: C
    - auth: trust
postgresql:
  listen: 127.0.0.1:{port}
  connect_address: 127.0.0.1:{port}
  data_dir: '{dir}/data'
  bin_dir: '{bin}'
  pgpass: '{dir}/pgpass'
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
  parameters:
    unix_socket_directories: '{dir}'
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
",
            name = m.name,
            api = m.api,
            port = m.port,
        ))
    }

    /// A URL for `--store` naming every member, so a client follows the
    /// primary: `postgres://postgres@127.0.0.1:P1,127.0.0.1:P2,.../DB
    /// ?target_session_attrs=read-write`. The primary of the moment comes
    /// first (a client tries the hosts in order), so once it fails, a
    /// client meets the failed host before the new primary: the harder
    /// case.
    pub fn url(&self, db: &str) -> String {
        let first = self.primary().ok();
        let hosts: Vec<String> = first
            .into_iter()
            .chain((0..self.members.len()).filter(|&i| Some(i) != first))
            .map(|i| format!("127.0.0.1:{}", self.members[i].port))
            .collect();
        format!(
            "postgres://postgres@{}/{db}?target_session_attrs=read-write",
            hosts.join(",")
        )
    }

    /// The number of members (killed ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s PostgreSQL port on 127.0.0.1.
    pub fn port(&self, i: usize) -> u16 {
        self.members[i].port
    }

    /// Whether member `i` was killed.
    pub fn killed(&self, i: usize) -> bool {
        lock(&self.members[i].patroni).is_none()
    }

    /// The member whose Patroni says it is the running primary (its REST
    /// API answers `GET /primary` with 200).
    pub fn primary(&self) -> Result<usize> {
        let found: Vec<usize> = (0..self.members.len())
            .filter(|&i| !self.killed(i))
            .filter(|&i| matches!(http_get(self.members[i].api, "/primary"), Ok((200, _))))
            .collect();
        match found.as_slice() {
            [i] => Ok(*i),
            [] => bail!("no member of the Patroni cluster is the primary now"),
            many => bail!("several members answer as primary: {many:?}"),
        }
    }

    /// The members as Patroni's `GET /cluster` reports them (asked of the
    /// first live member that answers).
    pub fn members_state(&self) -> Result<Vec<MemberState>> {
        let mut last = None;
        for (i, m) in self.members.iter().enumerate() {
            if self.killed(i) {
                continue;
            }
            match http_get(m.api, "/cluster") {
                Ok((200, body)) => return self.parse_cluster(&body),
                Ok((code, body)) => last = Some(anyhow::anyhow!("{code}: {body}")),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("every member was killed")))
    }

    fn parse_cluster(&self, body: &str) -> Result<Vec<MemberState>> {
        let v: serde_json::Value =
            serde_json::from_str(body).with_context(|| format!("/cluster answered {body}"))?;
        let list = v["members"]
            .as_array()
            .with_context(|| format!("/cluster has no members: {body}"))?;
        Ok(list
            .iter()
            .filter_map(|m| {
                let name = m["name"].as_str()?.to_owned();
                let index = self.members.iter().position(|x| x.name == name)?;
                Some(MemberState {
                    index,
                    name,
                    role: m["role"].as_str().unwrap_or_default().to_owned(),
                    state: m["state"].as_str().unwrap_or_default().to_owned(),
                    timeline: m["timeline"].as_u64(),
                })
            })
            .collect())
    }

    /// Crashes the primary's machine: SIGKILL to its PostgreSQL (the
    /// postmaster and every backend) and to its Patroni, at once. Nothing
    /// is shut down cleanly; its leader key in etcd expires after the TTL
    /// and Patroni promotes the synchronous standby. Returns the member
    /// that was the primary.
    pub fn kill_primary(&self) -> Result<usize> {
        let i = self.primary()?;
        self.kill(i);
        Ok(i)
    }

    /// Freezes the primary's machine: SIGKILL to its Patroni, SIGSTOP to
    /// its PostgreSQL (every process). Its sockets stay open and the
    /// kernel still acknowledges what is sent to them, but nothing ever
    /// answers: what a client sees of a hung server, and (but for TCP's
    /// acknowledgements) of a machine cut off by the network. Patroni
    /// promotes the synchronous standby as for a crash. Returns the member
    /// that was the primary; drop kills it.
    pub fn freeze_primary(&self) -> Result<usize> {
        let i = self.primary()?;
        let m = &self.members[i];
        let postmaster = postmaster_of(m).context("the primary's postmaster is not running")?;
        signal(postmaster, "STOP");
        if let Some(mut p) = lock(&m.patroni).take() {
            signal_group(p.id(), "KILL");
            let _ = p.kill();
            let _ = p.wait();
        }
        for pid in children_of(postmaster) {
            signal(pid, "STOP");
        }
        Ok(i)
    }

    /// SIGKILLs member `i`'s Patroni and PostgreSQL (as a machine crash).
    pub fn kill(&self, i: usize) {
        let m = &self.members[i];
        // Stop the postmaster first so it forks no backend while its
        // children are listed, then kill everything together.
        let postmaster = postmaster_of(m);
        if let Some(pm) = postmaster {
            signal(pm, "STOP");
        }
        let patroni = lock(&m.patroni).take();
        if let Some(p) = &patroni {
            // Patroni runs in its own process group: its helpers
            // (pg_basebackup, callbacks) go with it.
            signal_group(p.id(), "KILL");
        }
        let mut victims = Vec::new();
        if let Some(pm) = postmaster {
            victims.extend(children_of(pm));
            victims.push(pm);
            for &pid in &victims {
                signal(pid, "KILL");
            }
        }
        if let Some(mut p) = patroni {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = wait_until(Duration::from_secs(10), || {
            victims.iter().all(|&p| !alive(p))
        });
    }

    /// Waits until a live member accepts writes (PostgreSQL out of
    /// recovery, as `pg_is_in_recovery()` says) and Patroni holds it as
    /// the leader; returns it.
    pub fn wait_for_primary(&self, within: Duration) -> Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            for i in (0..self.members.len()).filter(|&i| !self.killed(i)) {
                if self
                    .psql(i, "postgres", "SELECT pg_is_in_recovery()")
                    .is_ok_and(|r| r == "f")
                    && self.primary().is_ok_and(|p| p == i)
                {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no primary within {} s (members: {:?})\n{}",
                    within.as_secs(),
                    self.members_state().ok(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL on member `i`'s database `db`; returns what it printed
    /// (unaligned, tuples only).
    pub fn psql(&self, i: usize, db: &str, sql: &str) -> Result<String> {
        let port = self.members[i].port.to_string();
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "3");
        let out = self.run(cmd)?;
        if !out.status.success() {
            bail!(
                "psql on {} ({sql}) failed: {}",
                self.members[i].name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The end of each member's Patroni log (PostgreSQL's log is in it),
    /// for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("== {}\n{}", m.name, tail(&m.dir.join("patroni.log"))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// As the `postgres` user when run as root; in the cluster's directory
    /// with `HOME` there too.
    fn command(&self, mut cmd: Command) -> Command {
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&self.dir).env("HOME", &self.dir);
        cmd
    }

    fn run(&self, cmd: Command) -> Result<Output> {
        let mut cmd = self.command(cmd);
        cmd.stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {cmd:?}"))
    }

    /// Starts a daemon in a process group of its own, its output in `log`.
    fn spawn(&self, cmd: Command, log: &Path) -> Result<Child> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = self.command(cmd);
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))
    }

    fn give_to_user(&self, path: &Path) -> Result<()> {
        if self.user.is_some() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .context("chown")?
                .success();
            if !ok {
                bail!("cannot give {} to the postgres user", path.display());
            }
        }
        Ok(())
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if let Some(mut etcd) = lock(&self.etcd).take() {
            signal_group(etcd.id(), "KILL");
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Distinct free ports on 127.0.0.1.
#[derive(Default)]
struct Ports(HashSet<u16>);

impl Ports {
    fn next(&mut self) -> Result<u16> {
        for _ in 0..100 {
            let p = free_port()?;
            if self.0.insert(p) {
                return Ok(p);
            }
        }
        bail!("no free port on 127.0.0.1")
    }
}

/// `(uid, gid)` of the `postgres` user (Debian's `postgresql` package
/// creates it).
fn postgres_user() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres") && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .context("no postgres user (apt-get install -y postgresql creates it)")
}

/// `name` on `PATH`, or in `/usr/bin`.
fn find_exe(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The postmaster of member `m`, if it runs (its pid file, checked
/// against the process's command line so a reused pid is never hit).
fn postmaster_of(m: &Member) -> Option<u32> {
    let data = m.dir.join("data");
    let pid: u32 = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let needle = data.to_str()?.as_bytes();
    (alive(pid) && cmdline.windows(needle.len()).any(|w| w == needle)).then_some(pid)
}

/// `(ppid, state)` of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((ppid, state))
}

fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z' && state != 'X')
}

/// Processes whose parent is `pid` (PostgreSQL's backends and auxiliary
/// processes each start a session of their own, so a group kill misses
/// them).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(ppid, _)| ppid == pid))
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

/// Polls `ok` every 100 ms until it holds; `Err(())` after `within`.
fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port`: `(status, body)`.
fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))?;
    conn.set_write_timeout(Some(Duration::from_secs(3)))?;
    conn.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e).context(format!("reading GET {path} from :{port}")),
        }
        // Done once the headers and `Content-Length` bytes are in.
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end].lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|n| raw.len() >= end + 4 + n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {path} from :{port} answered {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
