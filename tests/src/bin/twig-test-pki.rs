//! `twig-test-pki DIR`: writes a throwaway test CA, a server certificate for `localhost`,
//! 127.0.0.1 and ::1, and a client certificate into DIR (the Python suites' TLS tests use it;
//! the Rust tests call [`twig_tests::pki::write`] directly). File names: see that function.

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: twig-test-pki DIR");
        return std::process::ExitCode::FAILURE;
    };
    twig_tests::pki::write(
        std::path::Path::new(&dir),
        "twig test CA",
        "twig-test-client",
    );
    std::process::ExitCode::SUCCESS
}
