//! The hub's admin API as an operator reaches it: the address and bearer token from the hub's
//! home, plain HTTP/1.0 requests.

use crate::SupportError;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One hub's admin endpoint.
#[derive(Debug, Clone)]
pub struct HubAdmin {
    pub addr: String,
    pub token: String,
}

/// An answer: the HTTP status and the body.
#[derive(Debug, Clone)]
pub struct AdminReply {
    pub status: u16,
    pub body: String,
}

impl AdminReply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl HubAdmin {
    /// Reads `admin.addr` and `admin.token` from the hub's home (as the hub wrote them).
    pub fn of(home: &Path) -> Result<HubAdmin, SupportError> {
        let read = |name: &str| {
            std::fs::read_to_string(home.join(name))
                .map(|s| s.trim().to_string())
                .map_err(SupportError::io(format!("read {name}")))
        };
        Ok(HubAdmin {
            addr: read("admin.addr")?,
            token: read("admin.token")?,
        })
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str) -> Result<AdminReply, SupportError> {
        self.request("GET", path, Some(&self.token)).await
    }

    /// `method path`, with `token` as the bearer token if given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> Result<AdminReply, SupportError> {
        let mut s = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(SupportError::io(format!("connect {}", self.addr)))?;
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\n{auth}\r\n",
            self.addr
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(SupportError::io("send request"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .await
            .map_err(SupportError::io("read answer"))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SupportError::Failed(format!("no HTTP status in {head:?}")))?;
        Ok(AdminReply {
            status,
            body: body.to_string(),
        })
    }
}
