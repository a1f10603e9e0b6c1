//! Raw client conversations kept as data (`tests/conformance/*.conv`), replayed to a server and
//! recorded, so the same bytes can be sent to nats-server and to twig and the replies compared.
//!
//! File format, one directive a line (`#` starts a comment line):
//!
//! ```text
//! case NAME                 starts a case; every case runs on fresh servers
//! options K=V ...           server options: max_payload max_pending max_connections
//!                           ping_interval ping_max auth_timeout (seconds) user pass token
//!                           nkey (a user SEED, or `new` for a fresh one: the server lists
//!                           its public key)
//! keep-pings                keep server PINGs in the transcript (dropped by default, since
//!                           nats-server sends an RTT PING ~2 s after CONNECT)
//! open C                    connect client C (0, 1, ...)
//! send C BYTES              send bytes (escapes below)
//! sync C                    send PING and read until its PONG (or close)
//! wait C BYTES              read until BYTES arrived (or close)
//! close C [SECS]            read until the server closes C (default 5 s)
//! reload FILE               replace the config file given with `-c` (a copy per run) by
//!                           FILE (relative to `tests/`), send the reload signal, and wait
//!                           until the server logged that it reloaded (or refused to)
//! expect C BYTES            the reference server's masked transcript of C contains BYTES
//! expect-closed C / expect-open C   how the reference server left C at the end
//! end                       ends the case
//! ```
//! BYTES escapes: `\r \n \t \\ \xNN`, `{C*N}` = N copies of character C; `{nkey}` and `{sig}`
//! become the case's nkey public key and its signature of the nonce in this connection's INFO.
//!
//! After the last step every connection still open is synced twice (so the extra INFO nats-server
//! sends after the first PONG is always read), then marked `[open]` or `[closed]`.

use super::raw::{RawConn, ReadEnd};
use super::{ServerOptions, ServerUnderTest, Target};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deadline of each read step.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// One step of a conversation.
#[derive(Clone, Debug)]
pub enum Step {
    /// Connect client N.
    Open(usize),
    /// Send bytes on client N.
    Send(usize, Vec<u8>),
    /// PING, then read until its PONG.
    Sync(usize),
    /// Read until these bytes arrived.
    Wait(usize, Vec<u8>),
    /// Read until the server closes the connection.
    Close(usize, Duration),
    /// Replace the config by this file (relative to `tests/`) and reload.
    Reload(String),
}

/// A conversation and what the reference server must say in it.
#[derive(Clone, Debug, Default)]
pub struct Case {
    /// Name from the file.
    pub name: String,
    /// Server options for both servers.
    pub options: ServerOptions,
    /// Seed of the case's nkey user, if any.
    pub nkey_seed: Option<String>,
    /// Keep server PINGs in transcripts.
    pub keep_pings: bool,
    /// The script.
    pub steps: Vec<Step>,
    /// Bytes the reference's masked transcript of a client must contain.
    pub expects: Vec<(usize, String)>,
    /// Whether the reference closed a client by the end.
    pub expect_closed: Vec<(usize, bool)>,
}

/// Parse a `.conv` file.
pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    for (i, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim_start();
        let at = |m: &str| format!("line {}: {m}: {raw_line:?}", i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        if verb == "case" {
            if cur.is_some() {
                return Err(at("case inside a case (missing end)"));
            }
            cur = Some(Case {
                name: rest.trim().to_string(),
                ..Case::default()
            });
            continue;
        }
        let case = cur.as_mut().ok_or_else(|| at("directive outside a case"))?;
        let conn_and_rest = |rest: &str| -> Result<(usize, String), String> {
            let (c, r) = rest.split_once(' ').unwrap_or((rest, ""));
            let c = c.trim().parse().map_err(|_| at("bad connection number"))?;
            Ok((c, r.to_string()))
        };
        match verb {
            "end" => cases.push(cur.take().ok_or_else(|| at("end without case"))?),
            "options" => parse_options(case, rest).map_err(|e| at(&e))?,
            "keep-pings" => case.keep_pings = true,
            "open" => case.steps.push(Step::Open(conn_and_rest(rest)?.0)),
            "sync" => case.steps.push(Step::Sync(conn_and_rest(rest)?.0)),
            "send" => {
                let (c, b) = conn_and_rest(rest)?;
                case.steps
                    .push(Step::Send(c, unescape(&b).map_err(|e| at(&e))?));
            }
            "wait" => {
                let (c, b) = conn_and_rest(rest)?;
                case.steps
                    .push(Step::Wait(c, unescape(&b).map_err(|e| at(&e))?));
            }
            "close" => {
                let (c, secs) = conn_and_rest(rest)?;
                let secs = match secs.trim() {
                    "" => READ_DEADLINE.as_secs(),
                    s => s.parse().map_err(|_| at("bad seconds"))?,
                };
                case.steps.push(Step::Close(c, Duration::from_secs(secs)));
            }
            "reload" => case.steps.push(Step::Reload(rest.trim().to_string())),
            "expect" => {
                let (c, b) = conn_and_rest(rest)?;
                let b = unescape(&b).map_err(|e| at(&e))?;
                case.expects
                    .push((c, String::from_utf8_lossy(&b).into_owned()));
            }
            "expect-closed" => case.expect_closed.push((conn_and_rest(rest)?.0, true)),
            "expect-open" => case.expect_closed.push((conn_and_rest(rest)?.0, false)),
            _ => return Err(at("unknown directive")),
        }
    }
    if cur.is_some() {
        return Err("last case has no end".into());
    }
    Ok(cases)
}

fn parse_options(case: &mut Case, rest: &str) -> Result<(), String> {
    let o = &mut case.options;
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=').ok_or("option without =")?;
        let num = || v.parse::<u64>().map_err(|_| format!("{k}: not a number"));
        match k {
            "max_payload" => o.max_payload = Some(num()? as u32),
            "max_pending" => o.max_pending = Some(num()?),
            "max_connections" => o.max_connections = Some(num()? as u32),
            "ping_interval" => o.ping_interval = Some(Duration::from_secs(num()?)),
            "ping_max" => o.ping_max = Some(num()? as u32),
            "auth_timeout" => o.auth_timeout = Some(Duration::from_secs(num()?)),
            "user" => o.user = Some(v.into()),
            "pass" => o.pass = Some(v.into()),
            "token" => o.token = Some(v.into()),
            "nkey" => {
                // `nkey=new`: a fresh user for this case (both servers share it).
                let seed = match v {
                    "new" => super::NkeyUser::generate().seed,
                    seed => seed.to_string(),
                };
                let kp = nkeys::KeyPair::from_seed(&seed).map_err(|e| format!("nkey seed: {e}"))?;
                o.nkeys.push(kp.public_key());
                case.nkey_seed = Some(seed);
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(())
}

/// Decode the escapes of a BYTES argument.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => {
                let e = *b.get(i + 1).ok_or("trailing backslash")?;
                i += 2;
                match e {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = s.get(i..i + 2).ok_or("short \\x escape")?;
                        out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                        i += 2;
                    }
                    _ => return Err(format!("unknown escape \\{}", e as char)),
                }
            }
            b'{' => {
                // `{C*N}`: a repeat; anything else is literal (JSON braces, {nkey}, {sig}).
                let rep = b.get(i + 2) == Some(&b'*')
                    && s.get(i + 3..)
                        .and_then(|r| r.split_once('}'))
                        .is_some_and(|(n, _)| {
                            !n.is_empty() && n.bytes().all(|d| d.is_ascii_digit())
                        });
                if rep {
                    let ch = *b.get(i + 1).ok_or("bad repeat")?;
                    let (n, _) = s
                        .get(i + 3..)
                        .and_then(|r| r.split_once('}'))
                        .ok_or("repeat")?;
                    let n: usize = n.parse().map_err(|_| "bad repeat count")?;
                    out.extend(std::iter::repeat_n(ch, n));
                    i += 3 + n.to_string().len() + 1;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// What one client saw: masked lines, ending with `[open]` or `[closed]`.
pub type Transcript = Vec<String>;

/// Run a case against a freshly started `target`; one transcript per client, in client order.
pub fn run(case: &Case, target: Target) -> Vec<Transcript> {
    // A case that reloads changes its config file: each run gets its own copy.
    let own_config = tempfile::tempdir().expect("temp dir");
    let mut options = case.options.clone();
    let config = if case.steps.iter().any(|s| matches!(s, Step::Reload(_))) {
        let at = options
            .extra_args
            .iter()
            .position(|a| a == "-c")
            .expect("a case with `reload` needs `-c FILE` in its options");
        let arg = options.extra_args.get_mut(at + 1).expect("-c FILE");
        let copy = own_config.path().join("server.conf");
        std::fs::copy(&*arg, &copy).expect("copy the config");
        *arg = copy.display().to_string();
        Some(copy)
    } else {
        None
    };
    let server = ServerUnderTest::start_target(target, &options);
    let mut reloads = 0;
    let mut conns: BTreeMap<usize, RawConn> = BTreeMap::new();
    for step in &case.steps {
        match step {
            Step::Reload(file) => {
                let from = super::workspace_root().join("tests").join(file);
                let to = config.as_ref().expect("config copy");
                std::fs::copy(&from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
                server.signal("reload");
                reloads += 1;
                wait_reloaded(&server, reloads);
            }
            Step::Open(c) => {
                conns.insert(*c, RawConn::connect(&server.addr()));
            }
            Step::Send(c, bytes) => {
                let conn = conn(&mut conns, *c, &case.name);
                let bytes = substitute(case, conn, bytes);
                let _ = conn.try_send(&bytes);
            }
            Step::Sync(c) => {
                let _ = conn(&mut conns, *c, &case.name).ping_pong(READ_DEADLINE);
            }
            Step::Wait(c, needle) => {
                let _ = conn(&mut conns, *c, &case.name).read_until_contains(needle, READ_DEADLINE);
            }
            Step::Close(c, d) => {
                let _ = conn(&mut conns, *c, &case.name).read_until_closed(*d);
            }
        }
    }
    conns
        .into_values()
        .map(|mut c| {
            for _ in 0..2 {
                // A server that stopped answering costs one deadline, not two.
                if c.is_closed() || c.ping_pong(READ_DEADLINE) == ReadEnd::TimedOut {
                    break;
                }
            }
            let mut t = mask(c.received(), case.keep_pings);
            t.push(if c.is_closed() { "[closed]" } else { "[open]" }.to_string());
            t
        })
        .collect()
}

fn conn<'a>(conns: &'a mut BTreeMap<usize, RawConn>, c: usize, case: &str) -> &'a mut RawConn {
    conns
        .get_mut(&c)
        .unwrap_or_else(|| panic!("case {case}: client {c} used before `open {c}`"))
}

/// Replace `{nkey}` / `{sig}` using the case's seed and the nonce this connection was sent.
fn substitute(case: &Case, conn: &mut RawConn, bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("{nkey}") && !text.contains("{sig}") {
        return bytes.to_vec();
    }
    let seed = case
        .nkey_seed
        .as_deref()
        .expect("{nkey}/{sig} need `options nkey=SEED`");
    let kp = nkeys::KeyPair::from_seed(seed).expect("valid seed");
    let info = conn.read_info(READ_DEADLINE);
    let nonce = info["nonce"].as_str().unwrap_or_default().to_string();
    let sig = kp.sign(nonce.as_bytes()).expect("sign nonce");
    text.replace("{nkey}", &kp.public_key())
        .replace("{sig}", &base64url(&sig))
        .into_bytes()
}

/// Waits until `server` logged its `n`-th reload, done or refused (both servers use these
/// words).
fn wait_reloaded(server: &ServerUnderTest, n: usize) {
    server.wait_reloads(n, READ_DEADLINE);
}

/// Base64url without padding (the CONNECT `sig` encoding).
pub fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(A.get(idx as usize).copied().unwrap_or(b'?')));
        }
    }
    out
}

/// Split a server byte stream into lines (CRLF), normalize INFO lines and drop server PINGs
/// unless `keep_pings`.
pub fn mask(received: &[u8], keep_pings: bool) -> Transcript {
    let text = String::from_utf8_lossy(received);
    let mut parts: Vec<&str> = text.split("\r\n").collect();
    // What follows the last CRLF: empty unless the server stopped mid-line.
    let partial = parts.pop().filter(|p| !p.is_empty());
    let mut lines: Transcript = parts
        .into_iter()
        .filter(|l| keep_pings || *l != "PING")
        .map(|l| match l.strip_prefix("INFO ") {
            Some(json) => mask_info(json),
            None => shorten(l),
        })
        .collect();
    if let Some(p) = partial {
        lines.push(format!("{p} [partial line]"));
    }
    lines
}

/// Long lines (big payloads) become a prefix, their length and a hash: still compared exactly,
/// but readable in a failure message.
fn shorten(line: &str) -> String {
    const KEEP: usize = 80;
    if line.len() <= 2 * KEEP {
        return line.to_string();
    }
    let hash = line.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = line.chars().take(KEEP).collect();
    format!("{prefix}... [{} bytes, fnv {hash:016x}]", line.len())
}

/// INFO reduced to what clients depend on; ids, names, versions and addresses are masked.
fn mask_info(json: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json.trim()) else {
        return format!("INFO [unparsable] {json}");
    };
    let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    let present = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
    format!(
        "INFO proto={} headers={} max_payload={} auth_required={} tls_required={} client_id:{} client_ip:{} nonce:{}",
        v.get("proto").map_or("-".to_string(), |x| x.to_string()),
        flag("headers"),
        v.get("max_payload")
            .map_or("-".to_string(), |x| x.to_string()),
        flag("auth_required"),
        flag("tls_required"),
        present("client_id"),
        present("client_ip"),
        present("nonce"),
    )
}

/// Check a reference run against the case's `expect*` lines; returns the problems found.
pub fn check_expectations(case: &Case, reference: &[Transcript]) -> Vec<String> {
    let mut problems = Vec::new();
    for (c, needle) in &case.expects {
        let joined = reference
            .get(*c)
            .map(|t| t.join("\r\n"))
            .unwrap_or_default();
        if !joined.contains(needle.as_str()) {
            problems.push(format!("client {c} lacks {needle:?}"));
        }
    }
    for (c, closed) in &case.expect_closed {
        let last = reference.get(*c).and_then(|t| t.last()).map(String::as_str);
        let want = if *closed { "[closed]" } else { "[open]" };
        if last != Some(want) {
            problems.push(format!("client {c} ends {last:?}, expected {want}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_repeats_decode() {
        assert_eq!(
            unescape(r"PUB a 2\r\nhi\r\n").unwrap(),
            b"PUB a 2\r\nhi\r\n"
        );
        assert_eq!(unescape(r"\x00\t\\").unwrap(), b"\x00\t\\");
        assert_eq!(
            unescape("{x*3}{\"a\":1}{nkey}").unwrap(),
            b"xxx{\"a\":1}{nkey}"
        );
    }

    #[test]
    fn info_is_masked_to_significant_fields() {
        let t = mask(
            b"INFO {\"server_id\":\"N1\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\"client_id\":5,\"client_ip\":\"127.0.0.1\"} \r\n+OK\r\nPING\r\nMSG a 1 0\r\n\r\n",
            false,
        );
        assert_eq!(
            t,
            [
                "INFO proto=1 headers=true max_payload=1048576 auth_required=false tls_required=false client_id:true client_ip:true nonce:false",
                "+OK",
                "MSG a 1 0",
                ""
            ]
        );
    }

    #[test]
    fn a_case_file_parses() {
        let cases = parse(
            "# c\ncase one\n  options max_payload=10 user=a pass=b\n  open 0\n  send 0 PING\\r\\n\n  sync 0\n  close 0 2\n  expect 0 PONG\n  expect-closed 0\nend\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].options.max_payload, Some(10));
        assert_eq!(cases[0].steps.len(), 4);
        assert!(parse("case x\nopen 0\n").is_err());
    }

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
