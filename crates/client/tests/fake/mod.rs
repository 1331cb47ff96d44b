//! A scripted fake broker's building blocks: read a request frame, write a response frame.
#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request as the fake broker saw it: header and undecoded body.
pub struct Seen {
    pub header: RequestHeader,
    pub body: Bytes,
}

impl Seen {
    pub fn key(&self) -> ApiKey {
        ApiKey::try_from(self.header.request_api_key).unwrap()
    }
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

pub async fn read_request(s: &mut TcpStream) -> Option<Seen> {
    let len = s.read_i32().await.ok()?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    let mut buf = Bytes::from(buf);
    let key = ApiKey::try_from((&buf[0..2]).get_i16()).unwrap();
    let version = (&buf[2..4]).get_i16();
    let header = RequestHeader::decode(&mut buf, key.request_header_version(version)).unwrap();
    Some(Seen { header, body: buf })
}

pub async fn respond<R: Encodable + HeaderVersion>(s: &mut TcpStream, seen: &Seen, body_version: i16, response: &R) {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(seen.header.correlation_id)
        .encode(&mut buf, seen.key().response_header_version(seen.version()))
        .unwrap();
    response.encode(&mut buf, body_version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(buf.len() as i32);
    frame.put(buf);
    s.write_all(&frame).await.unwrap();
}

pub fn ranges(list: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        list.iter()
            .map(|(k, lo, hi)| {
                ApiVersion::default().with_api_key(*k as i16).with_min_version(*lo).with_max_version(*hi)
            })
            .collect(),
    )
}
