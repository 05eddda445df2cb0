//! A tiny authoritative-style DNS responder on 127.0.0.1 answering TXT (dns-01) and A /
//! AAAA queries (the http-01 and tls-alpn-01 hosts) from tables; NXDOMAIN otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use pkiplane_acme::validate::dns_client::{TYPE_A, TYPE_AAAA, TYPE_TXT, skip_name};

#[derive(Debug, Default)]
pub struct Tables {
    pub txt: HashMap<String, Vec<String>>,
    pub addresses: HashMap<String, Vec<IpAddr>>,
}

pub type Records = Arc<Mutex<Tables>>;

fn qname(msg: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    let mut pos = 12;
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    Some(labels.join("."))
}

/// The record data answering a query of `qtype` for `name`.
fn rdata(tables: &Tables, name: &str, qtype: u16) -> Vec<Vec<u8>> {
    match qtype {
        TYPE_TXT => tables
            .txt
            .get(name)
            .into_iter()
            .flatten()
            .map(|v| std::iter::once(v.len() as u8).chain(v.bytes()).collect())
            .collect(),
        TYPE_A | TYPE_AAAA => tables
            .addresses
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), TYPE_A) => Some(v4.octets().to_vec()),
                (IpAddr::V6(v6), TYPE_AAAA) => Some(v6.octets().to_vec()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn answer(query: &[u8], records: &Records) -> Option<Vec<u8>> {
    let name = qname(query)?;
    let end = skip_name(query, 12)? + 4;
    let qtype = u16::from_be_bytes([query[end - 4], query[end - 3]]);
    let tables = records.lock().unwrap();
    let values = rdata(&tables, &name, qtype);
    let known = tables.txt.contains_key(&name) || tables.addresses.contains_key(&name);
    let mut rsp = query[..end].to_vec();
    rsp[2] = 0x84 | (query[2] & 0x01); // QR, AA, RD copied
    rsp[3] = if known { 0x00 } else { 0x03 }; // NOERROR (maybe no data) or NXDOMAIN
    rsp[6..8].copy_from_slice(&(values.len() as u16).to_be_bytes());
    rsp[8..12].fill(0);
    for v in values {
        rsp.extend_from_slice(&[0xc0, 12]);
        rsp.extend_from_slice(&qtype.to_be_bytes());
        rsp.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        rsp.extend_from_slice(&(v.len() as u16).to_be_bytes());
        rsp.extend_from_slice(&v);
    }
    Some(rsp)
}

pub async fn start() -> (SocketAddr, Records) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let records: Records = Arc::default();
    let table = records.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
            if let Some(rsp) = answer(&buf[..n], &table) {
                let _ = socket.send_to(&rsp, peer).await;
            }
        }
    });
    (addr, records)
}
