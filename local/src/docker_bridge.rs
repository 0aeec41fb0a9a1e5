//! How containers (`sam local`) reach services that listen on loopback only: the Docker
//! bridge's address on this machine (what `--add-host host.docker.internal:host-gateway` maps
//! to), and a forwarder from that address to the loopback port. Listening there instead of on
//! every interface keeps the emulators' tables, queues and secrets off the developer's network.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use anyhow::{bail, Context, Result};

/// The Docker bridge's gateway address: the host as containers on the default bridge see it.
pub fn address() -> Result<IpAddr> {
    let output = Command::new("docker")
        .args(["network", "inspect", "bridge", "--format"])
        .arg("{{range .IPAM.Config}}{{.Gateway}} {{end}}")
        .output()
        .context("running docker network inspect bridge (is Docker installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("docker network inspect bridge failed (is Docker running?): {stderr}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .find_map(|word| word.parse::<Ipv4Addr>().ok())
        .map(IpAddr::V4)
        .with_context(|| format!("no IPv4 gateway on Docker's bridge network: {stdout:?}"))
}

/// Accepts connections on `host` at `port` and pipes each to 127.0.0.1 at the same port, until
/// dropped.
#[derive(Debug)]
pub struct Forward {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Forward {
    pub fn start(host: IpAddr, port: u16) -> Result<Self> {
        let listener = TcpListener::bind((host, port))
            .with_context(|| format!("listening on {host}:{port} for containers"))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        thread::spawn(move || {
            for inbound in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(inbound) = inbound {
                    thread::spawn(move || pipe(inbound, port));
                }
            }
        });
        Ok(Self {
            addr: SocketAddr::new(host, port),
            stopped,
        })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies both ways between `inbound` and the loopback service until both sides are done.
fn pipe(inbound: TcpStream, port: u16) -> io::Result<()> {
    let outbound = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let (mut from_client, mut to_service) = (inbound.try_clone()?, outbound.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_service);
        let _ = to_service.shutdown(Shutdown::Write);
    });
    let (mut from_service, mut to_client) = (outbound, inbound);
    let _ = io::copy(&mut from_service, &mut to_client);
    let _ = to_client.flush();
    let _ = to_client.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}
