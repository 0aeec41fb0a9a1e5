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
/// Docker does not always list the gateway in the network's IPAM config (a daemon that found
/// its bridge interface already up leaves it out), so then it is read from the bridge
/// interface itself.
pub fn address() -> Result<IpAddr> {
    let inspect = docker_inspect(
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}|{{index .Options \"com.docker.network.bridge.name\"}}",
    )?;
    let (gateways, interface) = inspect.split_once('|').unwrap_or((&inspect, ""));
    if let Some(gateway) = first_ipv4(gateways) {
        return Ok(gateway);
    }
    let interface = interface.trim();
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", interface])
        .output()
        .with_context(|| format!("running ip addr show dev {interface:?}"))?;
    let shown = String::from_utf8_lossy(&output.stdout);
    inet_address(&shown).with_context(|| {
        format!("no IPv4 gateway on Docker's bridge network ({inspect:?}) nor on its interface {interface:?}: {shown:?}")
    })
}

fn docker_inspect(format: &str) -> Result<String> {
    let output = Command::new("docker")
        .args(["network", "inspect", "bridge", "--format", format])
        .output()
        .context("running docker network inspect bridge (is Docker installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("docker network inspect bridge failed (is Docker running?): {stderr}");
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The first IPv4 address among whitespace-separated words.
fn first_ipv4(text: &str) -> Option<IpAddr> {
    text.split_whitespace()
        .find_map(|word| word.parse::<Ipv4Addr>().ok())
        .map(IpAddr::V4)
}

/// The address of the first `inet A.B.C.D/len` in `ip -4 -o addr show` output.
fn inet_address(text: &str) -> Option<IpAddr> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == "inet")?;
    let cidr = words.next()?;
    first_ipv4(cidr.split('/').next()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_comes_from_the_ipam_config_or_the_interface() {
        let v4 = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        assert_eq!(first_ipv4("172.17.0.1 "), v4("172.17.0.1"));
        // The IPAM config without a gateway, as a daemon that found docker0 up reports it.
        assert_eq!(first_ipv4(" \n"), None);
        let shown = "5: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever";
        assert_eq!(inet_address(shown), v4("172.17.0.1"));
        assert_eq!(inet_address(""), None);
    }
}
