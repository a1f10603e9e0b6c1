//! The mapping tables, a seeded round-trip property and a no-panic sweep over random bytes.

use super::testdata::{FILTERS, PUBLISH, SUBJECTS, ServerFilter};
use super::*;

const BUF: usize = 256;

use crate::testing::Rng;

fn map_publish(topic: &[u8], buf: &mut [u8; BUF]) -> Result<usize, MqttError> {
    publish_topic_to_subject(topic, buf)
}

/// NATS subject matching, only to check that the table's hits and misses are consistent.
fn nats_matches(filter: &[u8], subject: &[u8]) -> bool {
    let mut f = filter.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (f.next(), s.next()) {
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(_)) => {}
            (Some(ft), Some(st)) if ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[test]
fn publish_table_maps_as_nats_server() {
    for case in PUBLISH {
        let mut buf = [0u8; BUF];
        let got = map_publish(case.topic.as_bytes(), &mut buf).map(|n| &buf[..n]);
        let want = case.subject.map(str::as_bytes);
        assert_eq!(got, want, "topic {:?}", case.topic);
    }
}

#[test]
fn publish_table_fits_exactly_and_reports_small_buffers() {
    for case in PUBLISH {
        let Ok(subject) = case.subject else { continue };
        let mut exact = [0u8; BUF];
        let exact = &mut exact[..subject.len()];
        assert_eq!(
            publish_topic_to_subject(case.topic.as_bytes(), exact),
            Ok(subject.len())
        );
        let short = &mut [0u8; BUF][..subject.len() - 1];
        let got = publish_topic_to_subject(case.topic.as_bytes(), short);
        assert_eq!(
            got,
            Err(MqttError::BufferTooSmall),
            "topic {:?}",
            case.topic
        );
        assert!(subject.len() <= max_subject_len(case.topic.len()));
    }
}

#[test]
fn publish_table_round_trips_back_to_the_topic() {
    for case in PUBLISH {
        let Ok(subject) = case.subject else { continue };
        let mut buf = [0u8; BUF];
        let n = subject_to_topic(subject.as_bytes(), &mut buf).unwrap();
        assert_eq!(&buf[..n], case.topic.as_bytes(), "subject {subject:?}");
    }
}

#[test]
fn filter_table_maps_as_nats_server() {
    for case in FILTERS {
        let mut buf = [0u8; BUF];
        let got = filter_to_subjects(case.filter.as_bytes(), &mut buf);
        match (got, case.mapping) {
            (Ok(got), Ok(want)) => {
                assert_eq!(
                    got.subject,
                    want.subject.as_bytes(),
                    "filter {:?}",
                    case.filter
                );
                assert_eq!(
                    got.parent,
                    want.parent.map(str::as_bytes),
                    "{:?}",
                    case.filter
                );
                assert_eq!(got.reserved, want.reserved, "filter {:?}", case.filter);
            }
            (Err(got), Err(want)) => assert_eq!(got, want, "filter {:?}", case.filter),
            (got, want) => panic!("filter {:?}: got {got:?}, want {want:?}", case.filter),
        }
    }
}

#[test]
fn filter_table_hits_and_misses_agree_with_the_mapping() {
    for case in FILTERS {
        let (subjects, reserved): (&[&str], bool) = match (case.mapping, case.server) {
            (Ok(m), _) => (&[m.subject, m.parent.unwrap_or(m.subject)], m.reserved),
            (Err(_), ServerFilter::Accepts(s)) => (&[s, s], false),
            (Err(_), _) => {
                assert!(
                    case.hits.is_empty() && case.misses.is_empty(),
                    "{:?}",
                    case.filter
                );
                continue;
            }
        };
        let delivered = |subject: &str| {
            let matched = subjects
                .iter()
                .any(|f| nats_matches(f.as_bytes(), subject.as_bytes()));
            matched && !(reserved && is_reserved_topic(subject.as_bytes()))
        };
        assert!(
            !case.hits.is_empty(),
            "filter {:?} needs a hit",
            case.filter
        );
        for hit in case.hits {
            assert!(
                delivered(hit),
                "filter {:?} should get {hit:?}",
                case.filter
            );
        }
        for miss in case.misses {
            assert!(
                !delivered(miss),
                "filter {:?} should not get {miss:?}",
                case.filter
            );
        }
    }
}

#[test]
fn filter_without_wildcards_maps_like_a_publish_topic() {
    for case in PUBLISH {
        let (mut a, mut b) = ([0u8; BUF], [0u8; BUF]);
        let Ok(n) = map_publish(case.topic.as_bytes(), &mut a) else {
            continue;
        };
        if let Ok(f) = filter_to_subjects(case.topic.as_bytes(), &mut b) {
            assert_eq!(f.subject, &a[..n], "topic {:?}", case.topic);
        }
    }
}

#[test]
fn subject_table_maps_as_nats_server() {
    for case in SUBJECTS {
        let mut buf = [0u8; BUF];
        let got = subject_to_topic(case.subject.as_bytes(), &mut buf).map(|n| &buf[..n]);
        assert_eq!(
            got,
            case.topic.map(str::as_bytes),
            "subject {:?}",
            case.subject
        );
    }
}

#[test]
fn reserved_filters_do_not_deliver_dollar_subjects() {
    let mut buf = [0u8; BUF];
    let all = filter_to_subjects(b"#", &mut buf).unwrap();
    assert!(all.delivers(b"a.b"));
    assert!(!all.delivers(b"$SYS.x"));

    let mut buf = [0u8; BUF];
    let sys = filter_to_subjects(b"$SYS/#", &mut buf).unwrap();
    assert!(sys.delivers(b"$SYS.x"));

    assert!(is_reserved_filter_subject(b"*.x"));
    assert!(!is_reserved_filter_subject(b"x.*"));
    assert!(!is_reserved_filter_subject(b"/.*"));
}

#[test]
fn random_topics_round_trip_through_the_subject() {
    // Bias towards the bytes the mapping treats specially, where mistakes hide.
    const ALPHABET: &[u8] = b"//..ab$*>\x0b";
    let mut rng = Rng(0x7477_6967_6d71_7474);
    let mut checked = 0;
    for _ in 0..20_000 {
        let mut topic = [0u8; 12];
        let len = 1 + rng.below(topic.len());
        for b in &mut topic[..len] {
            *b = ALPHABET[rng.below(ALPHABET.len())];
        }
        let topic = &topic[..len];
        let mut subject = [0u8; BUF];
        let n = map_publish(topic, &mut subject).unwrap();
        assert!(n <= max_subject_len(len));
        let mut back = [0u8; BUF];
        let m = subject_to_topic(&subject[..n], &mut back).unwrap();
        assert_eq!(&back[..m], topic, "subject {:?}", &subject[..n]);
        checked += 1;
    }
    assert_eq!(checked, 20_000);
}

#[test]
fn random_bytes_never_panic_and_fit_the_max_len() {
    let mut rng = Rng(0x5eed);
    for _ in 0..50_000 {
        let mut input = [0u8; 24];
        let len = rng.below(input.len() + 1);
        for b in &mut input[..len] {
            *b = match rng.below(4) {
                0 => b"/.+#$ *>"[rng.below(8)],
                _ => rng.next_u64() as u8,
            };
        }
        let input = &input[..len];
        let mut out = [0u8; BUF];
        let cap = rng.below(max_subject_len(len) + 2);
        if let Ok(n) = publish_topic_to_subject(input, &mut out[..cap]) {
            assert!(n <= max_subject_len(len));
        }
        if let Ok(f) = filter_to_subjects(input, &mut out[..cap]) {
            assert!(f.subject.len() <= max_subject_len(len));
        }
        if let Ok(n) = subject_to_topic(input, &mut out[..cap]) {
            assert!(n <= max_topic_len(len));
        }
    }
}

#[test]
fn max_lengths_cover_the_worst_case() {
    // Every `/` after a leading one grows by two, and the end gets one more.
    let mut buf = [0u8; BUF];
    let n = map_publish(b"////", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"/././././");
    assert_eq!(n, max_subject_len(4));
    assert_eq!(max_subject_len(usize::MAX), usize::MAX);
}
