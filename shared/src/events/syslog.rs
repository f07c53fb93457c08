//! Audit log forwarding to a syslog endpoint (Harbor's
//! `audit_log_forward_endpoint`): `host:port` or `tcp://host:port` sends
//! over TCP with one message per line (RFC 6587's non-transparent
//! framing), `udp://host:port` one datagram per message. Messages are
//! RFC 5424, facility local0, severity informational.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Checks an endpoint's form (for the settings API).
pub fn validate(endpoint: &str) -> Result<(), String> {
    let (_, addr) = split(endpoint);
    let ok =
        addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok { Ok(()) } else { Err(format!("audit_log_forward_endpoint {endpoint:?} is not [tcp://|udp://]host:port")) }
}

fn split(endpoint: &str) -> (bool, &str) {
    let e = endpoint.trim();
    if let Some(rest) = e.strip_prefix("udp://") {
        (true, rest)
    } else {
        (false, e.strip_prefix("tcp://").unwrap_or(e))
    }
}

/// The RFC 5424 message for `line`.
pub fn message(line: &str) -> String {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    // <PRI> = local0 (16) * 8 + informational (6)
    format!("<134>1 {now} berth audit - - - {line}")
}

/// Sends `line` to `endpoint`.
pub async fn send(endpoint: &str, line: &str) -> Result<(), String> {
    validate(endpoint)?;
    let (udp, addr) = split(endpoint);
    let msg = message(line);
    let attempt = async {
        if udp {
            let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            socket.send_to(msg.as_bytes(), addr).await.map(drop)
        } else {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(format!("{msg}\n").as_bytes()).await?;
            stream.shutdown().await
        }
    };
    match tokio::time::timeout(TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{endpoint}: {e}")),
        Err(_) => Err(format!("{endpoint}: timed out")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn endpoints() {
        assert!(validate("logs.example:10514").is_ok());
        assert!(validate("udp://127.0.0.1:514").is_ok());
        assert!(validate("tcp://[::1]:514").is_ok());
        assert!(validate("nohost").is_err());
        assert!(validate(":514").is_err());
        assert!(validate("h:0").is_err());
    }

    #[tokio::test]
    async fn lines_arrive_over_tcp_and_udp() {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = tcp.accept().await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        });
        send(&addr.to_string(), "operator=\"a\" action:create").await.unwrap();
        let got = reader.await.unwrap();
        assert!(got.starts_with("<134>1 ") && got.ends_with("operator=\"a\" action:create\n"), "{got}");

        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        send(&format!("udp://{}", udp.local_addr().unwrap()), "x").await.unwrap();
        let mut buf = [0u8; 512];
        let n = udp.recv(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with(" x"));
        assert!(send("127.0.0.1:1", "x").await.is_err());
    }
}
