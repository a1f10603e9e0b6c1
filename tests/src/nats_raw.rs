//! A bare NATS client over TCP: CONNECT, SUB, PUB, PING/PONG and reading MSG/HMSG.
//!
//! The tests look at subjects byte for byte, including ones a full client would refuse or
//! split (nats-server maps the MQTT topic `a\vb` to a subject containing a vertical tab, which
//! async-nats splits as whitespace). Like nats-server, this splits control lines only on space
//! and tab.

use std::collections::VecDeque;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

/// A message as delivered to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The subject, raw.
    pub subject: Vec<u8>,
    /// The header block (`NATS/1.0\r\n...\r\n\r\n`) of an HMSG.
    pub headers: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Msg {
    /// The value of header `name`, if the message has it.
    pub fn header(&self, name: &str) -> Option<String> {
        let block = String::from_utf8_lossy(self.headers.as_deref()?).into_owned();
        block.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim().to_owned())
        })
    }
}

enum Op {
    Msg(Msg),
    Pong,
}

/// One raw NATS connection; server PINGs are answered while reading.
pub struct RawNats {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pending: VecDeque<Msg>,
}

impl RawNats {
    /// Connects (headers on, verbose off) and waits for the first PONG.
    pub async fn connect(port: u16, deadline: Instant) -> RawNats {
        let stream = timeout_at(deadline, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("NATS TCP connect timed out")
            .expect("NATS TCP connect");
        let (read, writer) = stream.into_split();
        let mut conn = RawNats {
            reader: BufReader::new(read),
            writer,
            pending: VecDeque::new(),
        };
        let info = conn.read_line(deadline).await;
        assert!(info.starts_with(b"INFO "), "expected INFO, got {info:?}");
        let connect = r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":false,"protocol":1,"lang":"twig-tests","version":"0"}"#;
        conn.write(format!("CONNECT {connect}\r\n").as_bytes())
            .await;
        conn.flush(deadline).await;
        conn
    }

    /// `SUB <subject> <sid>`.
    pub async fn subscribe(&mut self, subject: &str, sid: u32) {
        self.write(format!("SUB {subject} {sid}\r\n").as_bytes())
            .await;
    }

    /// `PUB <subject> <len>` and the payload.
    pub async fn publish(&mut self, subject: &[u8], payload: &[u8]) {
        // The subject goes out as raw bytes: it may hold what a `str` API would refuse.
        let mut op = b"PUB ".to_vec();
        op.extend_from_slice(subject);
        op.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
        op.extend_from_slice(payload);
        op.extend_from_slice(b"\r\n");
        self.write(&op).await;
    }

    /// PING and wait for its PONG: everything sent before has been processed by the server.
    pub async fn flush(&mut self, deadline: Instant) {
        self.write(b"PING\r\n").await;
        loop {
            match self.read_op(deadline).await {
                Op::Pong => return,
                Op::Msg(msg) => self.pending.push_back(msg),
            }
        }
    }

    /// The next message; panics at `deadline`.
    pub async fn next_msg(&mut self, deadline: Instant) -> Msg {
        if let Some(msg) = self.pending.pop_front() {
            return msg;
        }
        loop {
            if let Op::Msg(msg) = self.read_op(deadline).await {
                return msg;
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("NATS write");
    }

    async fn read_op(&mut self, deadline: Instant) -> Op {
        loop {
            let line = self.read_line(deadline).await;
            let args: Vec<&[u8]> = line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|a| !a.is_empty())
                .collect();
            match args.as_slice() {
                [b"PING"] => self.write(b"PONG\r\n").await,
                [b"PONG"] => return Op::Pong,
                [b"+OK"] | [b"INFO", ..] => {}
                [b"MSG", subject, _sid, .., size] => {
                    let payload = self.read_body(number(size), deadline).await;
                    let subject = subject.to_vec();
                    return Op::Msg(Msg {
                        subject,
                        headers: None,
                        payload,
                    });
                }
                [b"HMSG", subject, _sid, .., hdr, total] => {
                    let mut body = self.read_body(number(total), deadline).await;
                    let payload = body.split_off(number(hdr));
                    let subject = subject.to_vec();
                    return Op::Msg(Msg {
                        subject,
                        headers: Some(body),
                        payload,
                    });
                }
                _ => panic!(
                    "unexpected from nats-server: {:?}",
                    String::from_utf8_lossy(&line)
                ),
            }
        }
    }

    /// A control line without its CRLF.
    async fn read_line(&mut self, deadline: Instant) -> Vec<u8> {
        let mut line = Vec::new();
        let n = timeout_at(deadline, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("timed out waiting for nats-server")
            .expect("NATS read");
        assert!(n > 0, "nats-server closed the connection");
        line.truncate(line.len().saturating_sub(2));
        line
    }

    /// `len` bytes and the CRLF after them.
    async fn read_body(&mut self, len: usize, deadline: Instant) -> Vec<u8> {
        let mut body = vec![0; len + 2];
        timeout_at(deadline, self.reader.read_exact(&mut body))
            .await
            .expect("timed out reading a NATS message body")
            .expect("NATS read");
        body.truncate(len);
        body
    }
}

fn number(arg: &[u8]) -> usize {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad size {arg:?} from nats-server"))
}
