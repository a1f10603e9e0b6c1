//! Build facts twig reports the way nats-server reports its own (INFO `git_commit` and `go`,
//! `/varz`, `-v`, the startup log): the git commit the binary was built from and the Rust
//! compiler that built it.
//!
//! - `TWIG_GIT_COMMIT`: `TWIG_GIT_COMMIT` from the environment if set (packagers building
//!   from a tarball), else `git rev-parse --short=7 HEAD`, else empty (then INFO leaves
//!   `git_commit` out, as nats-server does for a build that does not know it).
//! - `TWIG_RUSTC`: the first line of `$RUSTC --version`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
//!
//! The script reruns only when HEAD or the branch it points to moves, never on every build.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TWIG_GIT_COMMIT");
    let commit = std::env::var("TWIG_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_default();
    println!("cargo:rustc-env=TWIG_GIT_COMMIT={commit}");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "rustc".to_owned());
    println!("cargo:rustc-env=TWIG_RUSTC={version}");
}

/// The short commit of HEAD, and rerun-if-changed lines for the files that move with it.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (!s.is_empty()).then_some(s)
    };
    let commit = git(&["rev-parse", "--short=7", "HEAD"])?;
    // HEAD itself (a checkout), the branch it names (a commit), packed refs (a gc).
    let mut watch: Vec<String> = vec!["HEAD".into(), "packed-refs".into()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = PathBuf::from(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(commit)
}
