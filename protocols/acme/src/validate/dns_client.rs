//! A minimal DNS stub client (RFC 1035): one query to a resolver over UDP, repeated over
//! TCP when the answer is truncated. TXT records for dns-01; A and AAAA records for the
//! http-01 and tls-alpn-01 hosts when the endpoint names a resolver (so one DNS server
//! answers for every challenge type, as in a test bed or a private network). The resolver
//! does the recursion and follows CNAMEs; only records of the asked type are kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const TYPE_A: u16 = 1;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// What a lookup can end in.
#[derive(Debug, PartialEq, Eq)]
pub enum DnsError {
    /// No answer, a malformed answer, or a server failure.
    Failed(String),
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::Failed(m) => f.write_str(m),
        }
    }
}

/// Encodes a query for records of type `qtype` of `name`.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::Failed(format!("`{name}` is not a valid DNS name")));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

/// Skips a possibly compressed name starting at `pos`; returns the position after it.
pub fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2).filter(|p| *p <= msg.len());
        }
        pos += 1 + len;
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The answer: `Ok(None)` when truncated (retry over TCP), else the data of the answer
/// records of type `qtype` (others, such as the CNAMEs leading to them, are skipped).
/// NXDOMAIN is an empty list.
pub fn parse_answer(id: u16, qtype: u16, msg: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DnsError> {
    let bad = || DnsError::Failed("the DNS answer is malformed".into());
    if msg.len() < 12 || u16_at(msg, 0) != Some(id) || msg[2] & 0x80 == 0 {
        return Err(bad());
    }
    if msg[2] & 0x02 != 0 {
        return Ok(None);
    }
    match msg[3] & 0x0f {
        0 => {}
        3 => return Ok(Some(Vec::new())),
        rcode => return Err(DnsError::Failed(format!("the DNS server answered with rcode {rcode}"))),
    }
    let (qd, an) = (u16_at(msg, 4).ok_or_else(bad)?, u16_at(msg, 6).ok_or_else(bad)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos).ok_or_else(bad)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = skip_name(msg, pos).ok_or_else(bad)?;
        let rtype = u16_at(msg, pos).ok_or_else(bad)?;
        let rdlen = u16_at(msg, pos + 8).ok_or_else(bad)? as usize;
        let start = pos + 10;
        let rdata = msg.get(start..start + rdlen).ok_or_else(bad)?;
        pos = start + rdlen;
        if rtype == qtype {
            out.push(rdata.to_vec());
        }
    }
    Ok(Some(out))
}

/// A TXT record's text: its character-strings concatenated.
fn txt_text(rdata: &[u8]) -> Result<String, DnsError> {
    let mut text = Vec::new();
    let mut i = 0;
    while i < rdata.len() {
        let l = rdata[i] as usize;
        text.extend_from_slice(
            rdata.get(i + 1..i + 1 + l).ok_or_else(|| DnsError::Failed("the DNS answer is malformed".into()))?,
        );
        i += 1 + l;
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// An A or AAAA record's address.
fn address(qtype: u16, rdata: &[u8]) -> Result<IpAddr, DnsError> {
    let bad = || DnsError::Failed("the DNS answer holds a malformed address".into());
    match qtype {
        TYPE_A => <[u8; 4]>::try_from(rdata).map(|b| IpAddr::V4(Ipv4Addr::from(b))).map_err(|_| bad()),
        TYPE_AAAA => <[u8; 16]>::try_from(rdata).map(|b| IpAddr::V6(Ipv6Addr::from(b))).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Looks up the TXT records of `name` at `server`.
pub async fn txt_lookup(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<String>, DnsError> {
    lookup(server, name, TYPE_TXT, timeout).await?.iter().map(|r| txt_text(r)).collect()
}

/// Looks up the A and AAAA records of `name` at `server` (both asked within `timeout`).
pub async fn address_lookup(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<IpAddr>, DnsError> {
    let (v4, v6) = tokio::join!(lookup(server, name, TYPE_A, timeout), lookup(server, name, TYPE_AAAA, timeout));
    // One family failing (a server refusing AAAA, say) does not hide the other's answer.
    let mut out = Vec::new();
    let mut failure = None;
    for (qtype, answer) in [(TYPE_A, v4), (TYPE_AAAA, v6)] {
        match answer.and_then(|records| records.iter().map(|r| address(qtype, r)).collect::<Result<Vec<_>, _>>()) {
            Ok(addrs) => out.extend(addrs),
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// Looks up the records of type `qtype` of `name` at `server`: their data.
pub async fn lookup(server: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> Result<Vec<Vec<u8>>, DnsError> {
    let mut idb = [0u8; 2];
    SystemRandom::new().fill(&mut idb).map_err(|_| DnsError::Failed("no randomness".into()))?;
    let id = u16::from_be_bytes(idb);
    let q = query(id, name, qtype)?;
    let io = |e: std::io::Error| DnsError::Failed(format!("asking {server}: {e}"));
    let bind: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let udp = UdpSocket::bind(bind).await.map_err(io)?;
    udp.connect(server).await.map_err(io)?;
    udp.send(&q).await.map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, udp.recv(&mut buf))
            .await
            .map_err(|_| DnsError::Failed(format!("{server} did not answer within {timeout:?}")))?
            .map_err(io)?;
        // Answers to other queries (wrong id) are ignored, not trusted.
        if u16_at(&buf[..n], 0) != Some(id) {
            continue;
        }
        if let Some(records) = parse_answer(id, qtype, &buf[..n])? {
            return Ok(records);
        }
        break;
    }
    let tcp = async {
        let mut s = TcpStream::connect(server).await.map_err(io)?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed).await.map_err(io)?;
        let len = s.read_u16().await.map_err(io)? as usize;
        let mut msg = vec![0u8; len];
        s.read_exact(&mut msg).await.map_err(io)?;
        parse_answer(id, qtype, &msg)?.ok_or_else(|| DnsError::Failed("truncated answer over TCP".into()))
    };
    tokio::time::timeout_at(deadline, tcp)
        .await
        .map_err(|_| DnsError::Failed(format!("{server} did not answer over TCP within {timeout:?}")))?
}

/// The first nameserver of /etc/resolv.conf.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next()? == "nameserver").then_some(())?;
        let ip: std::net::IpAddr = parts.next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rsp: &mut Vec<u8>, rtype: u16, rdata: &[u8]) {
        rsp.extend_from_slice(&[0xc0, 12]);
        rsp.extend_from_slice(&rtype.to_be_bytes());
        rsp.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        rsp.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        rsp.extend_from_slice(rdata);
    }

    #[test]
    fn parses_txt_answers_with_compression() {
        let q = query(0x1234, "_acme-challenge.a.example", TYPE_TXT).unwrap();
        let mut rsp = q.clone();
        rsp[2] = 0x81;
        rsp[3] = 0x80;
        rsp[7] = 2; // two answers
        for text in [&["abc", "def"][..], &["xyz"][..]] {
            let rdata: Vec<u8> = text.iter().flat_map(|t| std::iter::once(t.len() as u8).chain(t.bytes())).collect();
            record(&mut rsp, TYPE_TXT, &rdata);
        }
        let records = parse_answer(0x1234, TYPE_TXT, &rsp).unwrap().unwrap();
        let texts: Vec<String> = records.iter().map(|r| txt_text(r).unwrap()).collect();
        assert_eq!(texts, ["abcdef", "xyz"]);
        assert!(parse_answer(0x9999, TYPE_TXT, &rsp).is_err());
        let mut nx = q.clone();
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(parse_answer(0x1234, TYPE_TXT, &nx).unwrap(), Some(vec![]));
        let mut tc = q;
        tc[2] = 0x83;
        assert_eq!(parse_answer(0x1234, TYPE_TXT, &tc).unwrap(), None);
    }

    #[test]
    fn parses_addresses_and_skips_the_cname_before_them() {
        let q = query(7, "web.example", TYPE_A).unwrap();
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        let mut rsp = q;
        rsp[2] = 0x81;
        rsp[3] = 0x80;
        rsp[7] = 2;
        record(&mut rsp, 5, &[3, b'w', b'w', b'w', 0xc0, 12]); // CNAME
        record(&mut rsp, TYPE_A, &[10, 96, 0, 80]);
        let records = parse_answer(7, TYPE_A, &rsp).unwrap().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(address(TYPE_A, &records[0]).unwrap(), IpAddr::from([10, 96, 0, 80]));
        let v6 = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(address(TYPE_AAAA, &v6).unwrap(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(address(TYPE_A, &[1, 2, 3]).is_err());
        assert!(address(TYPE_AAAA, &[1, 2, 3, 4]).is_err());
    }
}
