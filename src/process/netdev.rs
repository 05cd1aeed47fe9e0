//! linux.netDevices: host interfaces moved into the container's network namespace and
//! renamed there, with one rtnetlink RTM_NEWLINK request each (IFLA_NET_NS_FD and
//! IFLA_IFNAME together, so the device is never visible under its new name on the host).
//! When the namespace goes away the kernel gives physical devices back to the host and
//! destroys virtual ones.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNetDevice, Spec};

use super::namespaces::Plan;
use crate::err;
use crate::error::{Context, Result};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFNAMSIZ: usize = 16;

fn devices(spec: &Spec) -> Option<&HashMap<String, LinuxNetDevice>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .filter(|d| !d.is_empty())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < IFNAMSIZ
        && n != "."
        && n != ".."
        && !n.contains(['/', ':'])
        && !n.chars().any(char::is_whitespace)
}

/// Checked in `create` before anything exists.
pub fn check(spec: &Spec, plan: &Plan) -> Result<()> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    if !plan.new.contains(CloneFlags::CLONE_NEWNET) {
        return Err(err!(
            "config.json linux.netDevices: needs a new network namespace in linux.namespaces (moving a device to a namespace given by path, or to the host's, is refused)"
        ));
    }
    let mut targets: Vec<&str> = Vec::new();
    for (host, d) in devs {
        let field = format!("config.json linux.netDevices[{host:?}]");
        if !valid_name(host) {
            return Err(err!("{field}: not a valid interface name"));
        }
        nix::net::if_::if_nametoindex(host.as_str())
            .with_ctx(|| format!("{field}: no such interface on the host"))?;
        let target = d.name().as_deref().unwrap_or(host);
        if !valid_name(target) {
            return Err(err!(
                "{field}.name: {target:?} is not a valid interface name"
            ));
        }
        if targets.contains(&target) {
            return Err(err!(
                "{field}.name: {target:?} is the name of another device too"
            ));
        }
        targets.push(target);
    }
    Ok(())
}

/// Move every listed device into the namespace of `pid`.
pub fn move_in(spec: &Spec, pid: Pid) -> Result<()> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    let ns = nix::fcntl::open(
        format!("/proc/{pid}/ns/net").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("config.json linux.netDevices: open the container's network namespace")?;
    let sock = socket()?;
    let mut names: Vec<&String> = devs.keys().collect();
    names.sort();
    for (seq, host) in names.into_iter().enumerate() {
        let target = devs[host].name().as_deref().unwrap_or(host);
        let field = format!("config.json linux.netDevices[{host:?}]");
        let index = nix::net::if_::if_nametoindex(host.as_str())
            .with_ctx(|| format!("{field}: no such interface on the host"))?;
        let msg = new_link(seq as u32 + 1, index as i32, ns.as_raw_fd() as u32, target);
        request(&sock, &msg)
            .with_ctx(|| format!("{field}: move into the container as {target}"))?;
    }
    Ok(())
}

fn socket() -> Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the new fd is ours.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(nix::errno::Errno::last()).ctx("rtnetlink socket");
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// RTM_NEWLINK for interface `index`: into netns `ns_fd`, renamed `name`.
fn new_link(seq: u32, index: i32, ns_fd: u32, name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    // struct ifinfomsg: family, pad, type, index, flags, change.
    body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut body, IFLA_NET_NS_FD, &ns_fd.to_ne_bytes());
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    attr(&mut body, IFLA_IFNAME, &cname);
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend(body);
    msg
}

/// Send one request and read its acknowledgement: an NLMSG_ERROR whose code is 0 or -errno.
fn request(sock: &OwnedFd, msg: &[u8]) -> Result<()> {
    nix::sys::socket::send(sock.as_raw_fd(), msg, nix::sys::socket::MsgFlags::empty())
        .ctx("send")?;
    let mut buf = [0u8; 4096];
    let n = nix::sys::socket::recv(
        sock.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::empty(),
    )
    .ctx("receive")?;
    let reply = &buf[..n];
    if reply.len() < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != NLMSG_ERROR {
        return Err(err!("unexpected rtnetlink reply"));
    }
    let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    if code == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::from_raw(-code).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let m = new_link(7, 3, 9, "eth1");
        assert_eq!(m.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 3);
        // First attribute: IFLA_NET_NS_FD = 9.
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_NET_NS_FD);
        assert_eq!(u32::from_ne_bytes(m[36..40].try_into().unwrap()), 9);
        assert_eq!(&m[44..49], b"eth1\0");
    }

    #[test]
    fn names() {
        assert!(valid_name("eth0") && valid_name("veth-berth.1"));
        for bad in ["", ".", "..", "a/b", "a b", "0123456789abcdef", "a:b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
