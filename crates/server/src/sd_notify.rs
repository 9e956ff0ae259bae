//! systemd's readiness protocol (`sd_notify(3)`), without libsystemd: when the
//! service manager sets `NOTIFY_SOCKET`, the server sends `READY=1` (with a `STATUS=`
//! line naming its addresses) once every listener is bound, so `Type=notify` units
//! start what depends on it only when it can be reached, and `STOPPING=1` when it
//! begins to shut down. Each is one datagram on a Unix socket: a path, or an abstract
//! name when the variable starts with `@`. Without the variable nothing is sent;
//! a failure to send is logged and otherwise ignored (the server serves all the same).

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=VALUE` lines) to `$NOTIFY_SOCKET`, if set.
pub(crate) fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&target, state) {
        tracing::warn!(
            "could not tell the service manager {state:?} through NOTIFY_SOCKET={}: {e}",
            target.to_string_lossy()
        );
    }
}

fn send(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    match bytes.split_first() {
        // An abstract socket (Linux): `@name` stands for a leading NUL byte.
        Some((b'@', name)) => {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)?;
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "abstract sockets exist only on Linux",
                ));
            }
        }
        Some(_) => {
            socket.send_to(state.as_bytes(), std::path::Path::new(target))?;
        }
        None => return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_and_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("sd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("chat-sd-notify-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let listener = UnixDatagram::bind_addr(&addr).unwrap();
            send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
            let n = listener.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"STOPPING=1");
        }
    }
}
