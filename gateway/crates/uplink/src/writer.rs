//! The uplink's writer task: drains the two-lane outbound so keepalive goes first.
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::{AsyncWriteExt, FutureExt};

use super::link::Link;
use super::outbound::{Taken, next_chunk};
use super::transport::WriteLayers;
use twig_util::dial::Writer;

/// How a connection dropped by the write deadline is reported (the reader sees the socket
/// shut right after and must not call it a close by the hub).
pub const WRITE_DEADLINE: &str = "write deadline exceeded";

/// Drains the link's outbound: urgent lines first, bulk data one chunk at a time with the
/// urgent lane looked at between chunks. Ends (with the reason) when the link closes or a
/// write fails or blocks past `deadline`; then shuts the socket so the reader ends too.
///
/// Each write (urgent lines plus one bulk chunk, up to [`CHUNK`](super::outbound::CHUNK)
/// bytes of whole ops: ~130 sensor readings) goes through `layers` as one unit: one
/// websocket message, one S2 flush of one block. Compressing per message would gain nothing
/// (a block of one reading does not compress); a block of a hundred readings shrinks to
/// about a third.
pub async fn write_loop(
    link: Arc<Link>,
    mut writer: Writer,
    mut layers: WriteLayers,
    deadline: Duration,
    stream: Arc<async_io::Async<std::net::TcpStream>>,
) -> String {
    let mut t = Taken::default();
    let mut pos = 0;
    let reason = loop {
        // Interest changes held back behind a full backlog go out once it has room.
        link.resync();
        let more_bulk = pos < t.bulk.len();
        if !more_bulk {
            t.bulk.clear();
            t.marks.clear();
            pos = 0;
        }
        let open = if more_bulk {
            link.out.try_take(false, &mut t)
        } else {
            link.out.take(true, &mut t).await
        };
        if !open {
            break "link closed".to_string();
        }
        let chunk = next_chunk(&t, pos);
        let write = async {
            let wrote: io::Result<()> = async {
                let bulk = t.bulk.get(chunk.clone()).unwrap_or_default();
                if layers.is_plain() {
                    if !t.urgent.is_empty() {
                        writer.write_all(&t.urgent).await?;
                    }
                    if !bulk.is_empty() {
                        writer.write_all(bulk).await?;
                    }
                } else {
                    let wire = layers
                        .encode(&t.ws_pongs, &t.urgent, bulk)
                        .map_err(io::Error::other)?;
                    if !wire.is_empty() {
                        writer.write_all(wire).await?;
                    }
                }
                writer.flush().await
            }
            .await;
            Some(wrote)
        };
        let timed_out = async {
            Timer::after(deadline).await;
            None
        };
        match write.or(timed_out).await {
            Some(Ok(())) => {}
            None => {
                break format!(
                    "{WRITE_DEADLINE}: a write to the hub blocked for {deadline:?} \
                     (leafnodes.write_deadline)"
                );
            }
            Some(Err(e)) => break format!("write error: {e}"),
        }
        t.urgent.clear();
        t.ws_pongs.clear();
        link.out.written(chunk.len(), std::time::Instant::now());
        pos = chunk.end;
        // Give a big buffer back once the link is idle; under load it is reused, since
        // freeing and re-allocating megabytes per batch costs page faults.
        if t.bulk.capacity() > 1024 * 1024 && pos >= t.bulk.len() && link.out.pending() == 0 {
            t.bulk = Vec::new();
            layers.shrink(1024 * 1024);
        }
    };
    link.out.close();
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    use async_io::Async;
    use futures_lite::AsyncReadExt;

    use twig_util::dial;

    /// nats-server #7615 on a real loopback socket: with 32 MiB of messages queued for a
    /// hub that reads slowly, a PONG queued later is on the wire long before the backlog ends.
    #[test]
    fn pong_overtakes_a_backlog_on_a_slow_link() {
        smol::block_on(async {
            let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            // A hub with a small receive window, as a slow link has in effect.
            let _ = socket2::SockRef::from(listener.get_ref()).set_recv_buffer_size(16 * 1024);
            let ours = Arc::new(Async::<std::net::TcpStream>::connect(addr).await.unwrap());
            dial::limit_unsent(ours.get_ref(), 16 * 1024);
            let (mut hub, _) = listener.accept().await.unwrap();

            let link = Arc::new(Link::new(0, 64 << 20));
            link.out.reset();
            link.out.open_bulk();
            const MSG: usize = 1000;
            const BACKLOG: usize = 32 << 20;
            for _ in 0..BACKLOG / MSG {
                link.out.push_msg(MSG, |b| {
                    b.extend_from_slice(b"LMSG s 990\r\n");
                    b.resize(b.len() + 986, b'x');
                    b.extend_from_slice(b"\r\n");
                    Ok(())
                });
            }
            let writer: Writer = Box::pin(dial::ArcIo(ours.clone()));
            let task = smol::spawn(write_loop(
                link.clone(),
                writer,
                WriteLayers::new(),
                Duration::from_secs(30),
                ours.clone(),
            ));
            // The hub has read a little when the keepalive becomes due.
            let mut seen = vec![0u8; 256 * 1024];
            hub.read_exact(&mut seen).await.unwrap();
            link.out.push_urgent(b"PONG\r\n");
            let mut buf = vec![0u8; 64 * 1024];
            let mut offset = seen.len();
            let mut tail: Vec<u8> = Vec::new();
            let found = loop {
                let n = hub.read(&mut buf).await.unwrap();
                assert!(n > 0, "stream ended before the PONG");
                tail.extend_from_slice(&buf[..n]);
                if let Some(i) = tail.windows(6).position(|w| w == b"PONG\r\n") {
                    break offset + i;
                }
                let keep = tail.len().saturating_sub(5);
                offset += keep;
                tail.drain(..keep);
            };
            assert!(
                found < 2 << 20,
                "PONG at byte {found} of a {BACKLOG}-byte backlog"
            );
            // It sits between two whole messages.
            assert_eq!(found % MSG, 0, "PONG at byte {found}, inside a message");
            eprintln!("PONG at byte {found} of {BACKLOG}");
            // The hub goes away: the blocked write fails and the writer ends.
            drop(hub);
            link.out.close();
            let _ = ours.get_ref().shutdown(std::net::Shutdown::Both);
            task.await;
        });
    }
}
