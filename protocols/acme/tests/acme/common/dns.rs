//! A tiny authoritative-style DNS responder on 127.0.0.1 answering TXT queries from a
//! table (NXDOMAIN otherwise), for dns-01.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pkiplane_acme::validate::dns_client::skip_name;

pub type Records = Arc<Mutex<HashMap<String, Vec<String>>>>;

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

fn answer(query: &[u8], records: &Records) -> Option<Vec<u8>> {
    let name = qname(query)?;
    let end = skip_name(query, 12)? + 4;
    let values = records.lock().unwrap().get(&name).cloned().unwrap_or_default();
    let mut rsp = query[..end].to_vec();
    rsp[2] = 0x84 | (query[2] & 0x01); // QR, AA, RD copied
    rsp[3] = if values.is_empty() { 0x03 } else { 0x00 };
    rsp[6..8].copy_from_slice(&(values.len() as u16).to_be_bytes());
    rsp[8..12].fill(0);
    for v in values {
        rsp.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0]);
        rsp.extend_from_slice(&((v.len() + 1) as u16).to_be_bytes());
        rsp.push(v.len() as u8);
        rsp.extend_from_slice(v.as_bytes());
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
