//! JetStream acknowledgement replies as they cross a leafnode (or route, or gateway).
//!
//! A pull consumer's message travels on the pull request's reply subject (an inbox), and
//! nats-server appends `@<original subject>` to its `$JS.ACK...` reply so the receiving server
//! can show clients the subject the message was stored under (nats-server `client.go`,
//! `jsAckDeliverIdx`: the first `@` after the eighth dot). Seen from nats-server 2.15.1:
//! `HMSG _INBOX.x $JS.ACK.CMD.edge1.1.1.1.1795336170443689479.2@cmd.edge1.x 18 20`.

const PREFIX: &[u8] = b"$JS.ACK.";

/// Splits a delivery's reply into the ack subject and the original subject (`None` when the
/// hub appended none, as for a client connected to the hub directly).
pub fn split_deliver(reply: &[u8]) -> (&[u8], Option<&[u8]>) {
    if !reply.starts_with(PREFIX) {
        return (reply, None);
    }
    let mut dots = 0;
    for (i, b) in reply.iter().enumerate() {
        match b {
            b'.' => dots += 1,
            b'@' if dots >= 8 => {
                let subject = reply.get(i + 1..).filter(|s| !s.is_empty());
                return (reply.get(..i).unwrap_or(reply), subject);
            }
            _ => {}
        }
    }
    (reply, None)
}
