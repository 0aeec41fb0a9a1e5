//! What a process and everything it started listen on, read from /proc: the sockets
//! themselves, not the options that were meant to produce them.

use std::collections::HashSet;
use std::net::SocketAddr;

use anyhow::Result;
use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

/// The addresses on which `pid` or any process below it accepts TCP connections.
pub fn listening(pid: i32) -> Result<Vec<SocketAddr>> {
    let processes: Vec<Process> = procfs::process::all_processes()?
        .filter_map(Result::ok)
        .collect();
    let tree = descendants(pid, &processes);
    let sockets: HashSet<u64> = processes
        .iter()
        .filter(|p| tree.contains(&p.pid))
        .filter_map(|p| p.fd().ok())
        .flat_map(|fds| fds.filter_map(Result::ok))
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect();
    let entries = procfs::net::tcp()?.into_iter().chain(procfs::net::tcp6()?);
    Ok(entries
        .filter(|e| e.state == TcpState::Listen && sockets.contains(&e.inode))
        .map(|e| e.local_address)
        .collect())
}

/// `pid` and every process whose parent chain leads to it.
fn descendants(pid: i32, processes: &[Process]) -> HashSet<i32> {
    let parents: Vec<(i32, i32)> = processes
        .iter()
        .filter_map(|p| p.stat().ok().map(|s| (p.pid, s.ppid)))
        .collect();
    let mut tree = HashSet::from([pid]);
    loop {
        let before = tree.len();
        for (child, parent) in &parents {
            if tree.contains(parent) {
                tree.insert(*child);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}
