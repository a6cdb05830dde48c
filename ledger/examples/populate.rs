//! Write N co-signed records between K generated agents into a ledger, with
//! a signed checkpoint and a witness cosignature after every batch.
//!
//! Run: `cargo run -p mesh-ledger --example populate -- --db FILE --records N --agents K [--batch B]`
//! (the same as `mesh-ledger populate`).

// Example code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = arg(&args, "--db", "populate.db");
    let records: u64 = arg(&args, "--records", "1000")
        .parse()
        .expect("--records is a number");
    let agents: usize = arg(&args, "--agents", "8")
        .parse()
        .expect("--agents is a number");
    let batch: usize = arg(&args, "--batch", "100")
        .parse()
        .expect("--batch is a number");
    let size = mesh_ledger::populate::populate(&db, records, agents, batch, &mut std::io::stdout())
        .await
        .expect("populate");
    eprintln!(
        "{size} records in {db} (log {})",
        mesh_ledger::populate::ORIGIN
    );
}
