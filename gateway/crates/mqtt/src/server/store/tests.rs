//! The MQTT store: retained messages, sessions round trip, and power cuts at every flash
//! write and erase of a scripted run of session changes.

use std::time::Instant;

use twig_core::log::testing::{Cut, MockFlash};
use twig_core::mqtt::packet::{QoS, SubOptions};

use super::*;

const SECTOR: usize = 1024;
type Flash = MockFlash<4, 4, SECTOR>;

fn config() -> LogConfig {
    LogConfig::new(0, (8 * SECTOR) as u32)
}

const LIMITS: StoreLimits = StoreLimits {
    max_retained_bytes: 600,
    max_retained: 4,
};

fn retained(topic: &str, payload: &[u8]) -> RetainedMsg {
    RetainedMsg {
        topic: topic.into(),
        subject: topic.replace('/', "."),
        headers: b"NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n".to_vec(),
        payload: payload.to_vec(),
    }
}

#[test]
fn retained_messages_match_clear_and_are_bounded() {
    let mut s = Store::open(Flash::new(8), config(), LIMITS).unwrap();
    s.set_retained(&retained("a/b", b"1")).unwrap();
    s.set_retained(&retained("a/c", b"2")).unwrap();
    s.set_retained(&retained("x", b"3")).unwrap();
    s.set_retained(&retained("a/b", b"one")).unwrap();
    let got = s.retained_matching("a.*").unwrap();
    assert_eq!(got, [retained("a/b", b"one"), retained("a/c", b"2")]);
    s.clear_retained("a/c").unwrap();
    assert_eq!(s.retained_count(), 2);
    // Bounded: bytes and count.
    assert_eq!(
        s.set_retained(&retained("big", &[0; 600])),
        Err(StoreError::RetainedFull)
    );
    s.set_retained(&retained("y", b"")).unwrap();
    s.set_retained(&retained("z", b"")).unwrap();
    assert_eq!(
        s.set_retained(&retained("w", b"")),
        Err(StoreError::RetainedFull)
    );
    s.sync().unwrap();
    let bytes = s.retained_bytes();
    let mut s = Store::open(s.into_inner(), config(), LIMITS).unwrap();
    assert_eq!(s.retained_bytes(), bytes);
    assert_eq!(s.retained_matching(">").unwrap().len(), 4);
}

fn sub(id: u32, filter: &str) -> Subscription {
    Subscription {
        id,
        filter: filter.into(),
        options: SubOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: false,
            retain_handling: 1,
        },
        sub_id: Some(7),
        share: None,
        subjects: vec![filter.replace('/', ".")],
    }
}

fn msg(serial: u64, qos: QoS) -> OutMsg {
    OutMsg {
        serial,
        topic: "t/1".into(),
        qos,
        retain: false,
        props: vec![0x26, 0, 1, b'k', 0, 1, b'v'],
        sub_id: Some(7),
        payload: vec![serial as u8; 20],
        expiry: None,
    }
}

/// A scripted run of changes for two clients, with syncs (`None`).
fn script() -> Vec<Option<Change>> {
    let c = |id: &str| id.to_string();
    let mut v = Vec::new();
    for round in 0..6u64 {
        for id in ["dev-a", "dev-b"] {
            v.push(Some(Change::Session {
                client_id: c(id),
                expiry: 3600,
                subs: (0..=round as u32 % 3)
                    .map(|i| sub(i, &format!("s/{i}")))
                    .collect(),
            }));
            let base = round * 10;
            v.push(Some(Change::Queued {
                client_id: c(id),
                msg: msg(base, QoS::AtLeastOnce),
            }));
            v.push(Some(Change::Queued {
                client_id: c(id),
                msg: msg(base + 1, QoS::ExactlyOnce),
            }));
            v.push(Some(Change::Sent {
                client_id: c(id),
                serial: base + 1,
                pkid: base as u16 + 1,
                released: false,
            }));
            v.push(None);
            v.push(Some(Change::Qos2Received {
                client_id: c(id),
                pkid: round as u16 + 1,
                n: round,
            }));
            if round % 3 == 0 {
                v.push(Some(Change::Qos2Published {
                    client_id: c(id),
                    pkid: round as u16 + 1,
                    n: round,
                }));
            }
            v.push(Some(Change::Done {
                client_id: c(id),
                serial: base,
            }));
            v.push(Some(Change::Sent {
                client_id: c(id),
                serial: base + 1,
                pkid: base as u16 + 1,
                released: true,
            }));
            if round % 2 == 1 {
                v.push(Some(Change::Qos2Released {
                    client_id: c(id),
                    pkid: round as u16,
                }));
                v.push(Some(Change::Done {
                    client_id: c(id),
                    serial: base - 9,
                }));
            }
            v.push(None);
        }
    }
    v.push(Some(Change::Deleted {
        client_id: c("dev-b"),
    }));
    v.push(None);
    v
}

type Snapshot = Vec<Option<SessionState>>;

fn snapshot(s: &mut Store<Flash>, now: Instant) -> Snapshot {
    ["dev-a", "dev-b"]
        .iter()
        .map(|id| s.load_session(id, now).expect("loads"))
        .collect()
}

/// Applies the script until the flash fails; returns how many steps completed, the index of
/// the last completed sync, and the flash.
fn run(flash: Flash, steps: &[Option<Change>]) -> (usize, usize, Flash) {
    let mut s = match Store::open(flash.clone(), config(), LIMITS) {
        Ok(s) => s,
        Err(_) => return (0, 0, flash),
    };
    let mut synced = 0;
    for (i, step) in steps.iter().enumerate() {
        let r = match step {
            Some(c) => s.apply(c),
            None => s.sync(),
        };
        if r.is_err() {
            return (i, synced, s.into_inner());
        }
        if step.is_none() {
            synced = i + 1;
        }
    }
    (steps.len(), synced, s.into_inner())
}

#[test]
fn sessions_round_trip() {
    let now = Instant::now();
    let steps = script();
    let (done, _, flash) = run(Flash::new(8), &steps);
    assert_eq!(done, steps.len());
    let mut s = Store::open(flash, config(), LIMITS).unwrap();
    let a = s
        .load_session("dev-a", now)
        .unwrap()
        .expect("dev-a is stored");
    assert_eq!(a.expiry, 3600);
    assert_eq!(
        a.subs,
        (0..=2)
            .map(|i| sub(i, &format!("s/{i}")))
            .collect::<Vec<_>>()
    );
    assert!(a.inflight.iter().all(|f| f.stage == Stage::WaitComp));
    assert_eq!(a.inflight.len(), 3, "{:?}", a.inflight);
    assert_eq!(a.qos2_in.len(), 3);
    // Left unreleased: rounds 1, 3 and 5; round 3's was recorded as published.
    assert_eq!(
        a.qos2_in
            .iter()
            .map(|q| (q.n, q.recorded))
            .collect::<Vec<_>>(),
        [(1, false), (3, true), (5, false)],
        "{:?}",
        a.qos2_in
    );
    assert_eq!(s.load_session("dev-b", now).unwrap(), None, "deleted");
    assert_eq!(s.sessions(), ["dev-a"]);
}

#[test]
fn power_cut_at_every_operation() {
    let now = Instant::now();
    let steps = script();
    // The state after each prefix of the script, from runs without a cut.
    let expected: Vec<Snapshot> = (0..=steps.len())
        .map(|j| {
            let (_, _, flash) = run(Flash::new(8), &steps[..j]);
            snapshot(&mut Store::open(flash, config(), LIMITS).unwrap(), now)
        })
        .collect();
    let (_, _, dry) = run(Flash::new(8), &steps);
    let total = dry.counts().writes + dry.counts().erases;
    assert!(total > 100, "{total} flash operations");
    for n in 0..total {
        let mut flash = Flash::new(8);
        flash.cut_power(Cut::AtOp {
            n,
            keep_seed: n ^ 0x5A5A,
        });
        let (done, synced, mut flash) = run(flash, &steps);
        flash.power_on();
        let mut s = Store::open(flash, config(), LIMITS).expect("opens after any cut");
        let got = snapshot(&mut s, now);
        let window = &expected[synced..=(done + 1).min(steps.len())];
        assert!(
            window.contains(&got),
            "cut at flash op {n} (step {done}, synced through {synced}): {got:?}"
        );
    }
}

#[test]
fn a_new_session_never_inherits_records_of_a_deleted_one() {
    let now = Instant::now();
    let mut s = Store::open(Flash::new(8), config(), LIMITS).unwrap();
    let id = "dev-x".to_string();
    s.apply(&Change::Session {
        client_id: id.clone(),
        expiry: 60,
        subs: vec![],
    })
    .unwrap();
    s.apply(&Change::Queued {
        client_id: id.clone(),
        msg: msg(1, QoS::AtLeastOnce),
    })
    .unwrap();
    // As a cut after the first step of `Deleted` leaves it: the session record alone gone.
    s.table.delete(&key(b's', &id, &[])).unwrap();
    s.sync().unwrap();
    let mut s = Store::open(s.into_inner(), config(), LIMITS).unwrap();
    s.apply(&Change::Session {
        client_id: id.clone(),
        expiry: 60,
        subs: vec![],
    })
    .unwrap();
    let st = s.load_session(&id, now).unwrap().unwrap();
    assert!(st.queue.is_empty() && st.inflight.is_empty(), "{st:?}");
}
