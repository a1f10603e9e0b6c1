//! twig-core throughput numbers, plain `std::time` (no harness):
//! `cargo bench -p twig-core --features std --bench core`.

mod parser;
mod sublist;

fn main() {
    parser::bench_parser();
    sublist::bench_sublist();
}
