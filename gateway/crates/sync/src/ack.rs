//! The reply subject of a JetStream delivery: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream
//! seq>.<consumer seq>.<timestamp>.<pending>` (9 tokens), or the newer form with the domain and
//! the account hash after `ACK` and a random token at the end (12 tokens; 11 also accepted), as
//! nats-server's `ackReplyInfo` and nats.go's `getMetadataFields` read it.
//!
//! Over a leafnode (or route, or gateway) a pull consumer's message travels on the pull
//! request's reply subject (the inbox), and nats-server appends `@<original subject>` to the
//! ack reply so the receiving server can show clients the subject the message was stored
//! under (`client.go jsAckDeliverIdx`: the first `@` after the eighth dot). Seen on the wire
//! from nats-server 2.15.1: `HMSG _INBOX.x $JS.ACK.CMD.edge1.1.1.1.1795336170443689479.2@cmd.edge1.x 18 20`.

/// What an ack reply says about the message it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckInfo<'a> {
    /// The stream.
    pub stream: &'a [u8],
    /// The consumer.
    pub consumer: &'a [u8],
    /// Times the hub delivered it (1 the first time).
    pub delivered: u64,
    /// Its sequence in the stream.
    pub stream_seq: u64,
    /// The consumer's delivery sequence.
    pub consumer_seq: u64,
    /// Messages left for the consumer after this one.
    pub pending: u64,
}

const PREFIX: &[u8] = b"$JS.ACK.";

/// Splits a delivery's reply into the ack subject and the original subject: twig-core's
/// (the uplink cuts the suffix off for clients on the way in; the consumer reads it here).
pub use twig_core::wire::split_deliver;

/// Reads an ack subject (without the `@` suffix).
pub fn parse(ack: &[u8]) -> Option<AckInfo<'_>> {
    let rest = ack.strip_prefix(PREFIX)?;
    let mut t: [&[u8]; 10] = [&[]; 10];
    let mut n = 0;
    for token in rest.split(|b| *b == b'.') {
        if n == t.len() {
            return None;
        }
        t[n] = token;
        n += 1;
    }
    // After `$JS.ACK.`: 7 tokens (old form) or 9-10 (domain, account hash, ..., random).
    let base = match n {
        7 => 0,
        9 | 10 => 2,
        _ => return None,
    };
    let num = |i: usize| -> Option<u64> {
        let s = std::str::from_utf8(t[base + i]).ok()?;
        s.parse().ok()
    };
    let info = AckInfo {
        stream: t[base],
        consumer: t[base + 1],
        delivered: num(2)?,
        stream_seq: num(3)?,
        consumer_seq: num(4)?,
        pending: num(6)?,
    };
    (!info.stream.is_empty() && !info.consumer.is_empty() && info.stream_seq > 0).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_of_nats_server_2_15_splits_and_parses() {
        let reply = b"$JS.ACK.CMD.edge1.1.3.3.1795336170444397135.0@cmd.edge1.x";
        let (ack, subject) = split_deliver(reply);
        assert_eq!(ack, b"$JS.ACK.CMD.edge1.1.3.3.1795336170444397135.0");
        assert_eq!(subject, Some(&b"cmd.edge1.x"[..]));
        let info = parse(ack).unwrap();
        assert_eq!(
            info,
            AckInfo {
                stream: b"CMD",
                consumer: b"edge1",
                delivered: 1,
                stream_seq: 3,
                consumer_seq: 3,
                pending: 0,
            }
        );
    }

    #[test]
    fn the_domain_form_and_odd_inputs() {
        let v2 = b"$JS.ACK.hub.ACCHASH.CMD.d.2.40.41.1795336170444397135.7.r4nd";
        let info = parse(v2).unwrap();
        assert_eq!((info.stream, info.consumer), (&b"CMD"[..], &b"d"[..]));
        assert_eq!((info.delivered, info.stream_seq, info.pending), (2, 40, 7));
        assert!(parse(&v2[..v2.len() - 5]).is_some(), "11 tokens");

        // An `@` inside the first eight tokens is part of a name, not the separator.
        let (ack, subject) = split_deliver(b"$JS.ACK.S@x.c.1.2.3.4.5@a.b");
        assert_eq!(
            (ack, subject),
            (&b"$JS.ACK.S@x.c.1.2.3.4.5"[..], Some(&b"a.b"[..]))
        );
        assert_eq!(split_deliver(b"_INBOX.a@b"), (&b"_INBOX.a@b"[..], None));
        assert_eq!(split_deliver(b"$JS.ACK.S.c.1.2.3.4.5@").1, None);

        for bad in [
            &b"$JS.ACK.S.c.1.2.3.4"[..],
            b"$JS.ACK.S.c.x.2.3.4.5",
            b"$JS.ACK.S.c.1.0.3.4.5",
            b"$JS.ACK..c.1.2.3.4.5",
            b"$JS.API.S.c.1.2.3.4.5",
            b"$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
