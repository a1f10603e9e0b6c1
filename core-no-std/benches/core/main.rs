//! twig-core throughput numbers, plain `std::time` (no harness):
//! `cargo bench -p twig-core --features std --bench core`.

mod parser;
mod s2;
mod sublist;

fn main() {
    if std::env::args().any(|a| a == "s2") {
        s2::bench_s2();
        return;
    }
    parser::bench_parser();
    sublist::bench_sublist();
    s2::bench_s2();
}
