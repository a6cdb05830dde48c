//! `mesh-ledger`: audit agent-mesh ledgers offline.
//!
//! Works on a SQLite ledger file, a `postgres://` URL or an export file
//! (verified where it lies). No networking beyond the database connection.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use mesh_ledger::audit::Required;
use mesh_ledger::merkle::{verify_consistency, verify_inclusion};
use mesh_ledger::note::NoteVerifier;
use mesh_ledger::store::Store;
use mesh_ledger::verify::{LogReport, orphan_rows, verify_log};
use mesh_ledger::{LogStore, MemoryLog};
use serde_json::json;

/// The exit code of a command that could not do its job: a usage error
/// (clap's own code), a missing or unreadable ledger, a bad argument value.
/// Distinct from 1, which `verify` gives a ledger with faults.
const CANNOT_RUN: u8 = 2;

/// Audit agent-mesh ledgers: verify every signature and root, prove
/// inclusion and consistency, inspect records and checkpoints.
#[derive(Parser)]
#[command(
    name = "mesh-ledger",
    version,
    about,
    after_help = "Exit codes: 0 success (for verify: the ledger is sound); 1 verify found \
                  faults; 2 the command could not run (usage error, missing or unreadable \
                  ledger, bad value). Formats and checks: docs/LEDGER.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every record signature and countersignature, the tree, every
    /// checkpoint signature, cosignature and consistency. Exit 1 on any
    /// fault, 2 if the ledger could not be read.
    Verify {
        /// A SQLite ledger file, a postgres:// URL or an export file.
        path: String,
        /// Only this log (default: every log in the ledger).
        #[arg(long)]
        origin: Option<String>,
        /// A witness whose cosignatures to check, as a C2SP verifier key
        /// (`name+keyid+base64`); repeat for several.
        #[arg(long = "witness", value_name = "VKEY")]
        witnesses: Vec<String>,
        /// A mesh witness by DID (its key name is its DID); repeat for several.
        #[arg(long = "witness-did", value_name = "DID")]
        witness_dids: Vec<String>,
        /// A trust bundle: every org root in it is accepted as a witness by DID.
        #[arg(long, value_name = "FILE")]
        bundle: Option<String>,
        /// Require each log's latest checkpoint to be cosigned by this
        /// given witness (its key name), or, given a number N, by at least
        /// N distinct given witnesses; repeat for several. A log without
        /// them has a fault.
        #[arg(long = "require-witness", value_name = "NAME|N")]
        require: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print an inclusion proof for a record against the latest checkpoint (JSON).
    Prove {
        /// A SQLite ledger file, a postgres:// URL or an export file.
        path: String,
        /// The record's index.
        #[arg(long)]
        index: u64,
        /// The log (default: the only log).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print a consistency proof between two sizes (JSON).
    Consistency {
        /// A SQLite ledger file, a postgres:// URL or an export file.
        path: String,
        /// Old size.
        #[arg(long)]
        from: u64,
        /// New size.
        #[arg(long)]
        to: u64,
        /// The log (default: the only log).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Summarise the ledger, or print one record (JSON).
    Inspect {
        /// A SQLite ledger file, a postgres:// URL or an export file.
        path: String,
        /// A record to print.
        #[arg(long)]
        index: Option<u64>,
        /// The log (default: the only log).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print the latest signed checkpoint note.
    Checkpoint {
        /// A SQLite ledger file, a postgres:// URL or an export file.
        path: String,
        /// The log (default: the only log).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Write the whole ledger to a versioned export file (docs/LEDGER.md §9).
    Export {
        /// A SQLite ledger file or a postgres:// URL.
        path: String,
        /// The export file to create; never overwritten.
        #[arg(long, value_name = "FILE")]
        out: String,
    },
    /// Fill a ledger with generated co-signed records (for trying the tool).
    Populate {
        /// The SQLite file to write (created if missing).
        #[arg(long)]
        db: String,
        /// Total records wanted in the log.
        #[arg(long, default_value_t = 1000)]
        records: u64,
        /// Generated agents taking part.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=10_000))]
        agents: u64,
        /// Records per durable transaction.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch: u64,
    },
}

/// Print a line to stdout; a reader that went away (`| head`) ends the
/// program quietly instead of with a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        emit_raw(&format!("{}\n", format_args!($($arg)*)))?
    };
}

fn emit_raw(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", mesh_iatp::error_chain::one_line(e.as_ref()));
            ExitCode::from(CANNOT_RUN)
        }
    }
}

/// Is `path` an export file (rather than a database)?
fn is_export(path: &str) -> bool {
    let p = std::path::Path::new(path);
    p.is_file() && mesh_ledger::export::looks_like_export(p)
}

/// A ledger opened for auditing: a database read-only, or the logs of an
/// export file read into memory (every record and checkpoint verified).
enum Audited {
    Db(Store),
    Export(Vec<MemoryLog>),
}

/// The export file at `path`, buffered.
fn open_export(path: &str) -> Result<std::io::BufReader<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    Ok(std::io::BufReader::new(file))
}

/// The database at `path` (a file or URL), read-only.
async fn open_db(path: &str) -> Result<Store> {
    Store::open_read_only(path)
        .await
        .with_context(|| format!("opening {path}"))
}

async fn open_for_audit(path: &str) -> Result<Audited> {
    if is_export(path) {
        let file = open_export(path)?;
        let logs = mesh_ledger::export::read_export(file).with_context(|| {
            format!("reading the export {path} (`mesh-ledger verify {path}` names every fault)")
        })?;
        return Ok(Audited::Export(logs));
    }
    let store = open_db(path).await?;
    Ok(Audited::Db(store))
}

impl Audited {
    async fn origins(&self) -> Result<Vec<String>> {
        Ok(match self {
            Audited::Db(store) => store.origins().await?,
            Audited::Export(logs) => logs.iter().map(|l| l.origin().to_owned()).collect(),
        })
    }

    /// The log `origin`.
    async fn log(&mut self, origin: &str) -> Result<Box<dyn LogStore>> {
        Ok(match self {
            Audited::Db(store) => Box::new(store.log(origin).await?),
            Audited::Export(logs) => {
                let at = logs
                    .iter()
                    .position(|l| l.origin() == origin)
                    .with_context(|| format!("no log {origin:?} in this export"))?;
                Box::new(logs.swap_remove(at))
            }
        })
    }

    /// The log `origin`, or the only one.
    async fn pick(&mut self, origin: Option<String>) -> Result<Box<dyn LogStore>> {
        let origin = match origin {
            Some(o) => o,
            None => {
                let all = self.origins().await?;
                match all.as_slice() {
                    [one] => one.clone(),
                    [] => bail!("the ledger holds no logs"),
                    many => bail!(
                        "the ledger holds {} logs; choose one with --origin ({})",
                        many.len(),
                        many.join(", ")
                    ),
                }
            }
        };
        self.log(&origin).await
    }
}

/// Open `path` for auditing and pick its log (`--origin`, or the only one).
async fn open_audited_log(path: &str, origin: Option<String>) -> Result<Box<dyn LogStore>> {
    open_for_audit(path).await?.pick(origin).await
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(origin: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "verifying {msg} [{bar:40}] {pos}/{len} records, {per_sec}, eta {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(origin.to_owned());
        b
    })
}

/// What `--require-witness` asks for: names of given witnesses, and a count.
fn required_witnesses(args: &[String], given: &[NoteVerifier]) -> Result<Required> {
    let mut required = Required::default();
    for arg in args {
        if let Ok(n) = arg.parse::<usize>() {
            if n > given.len() {
                bail!(
                    "--require-witness {n}: only {} witnesses were given (--witness, --witness-did, --bundle)",
                    given.len()
                );
            }
            required.count = required.count.max(n);
        } else if given.iter().any(|w| w.name == *arg) {
            required.names.push(arg.clone());
        } else {
            bail!(
                "--require-witness {arg:?}: not the name of a given witness (give its key with --witness or --witness-did)"
            );
        }
    }
    Ok(required)
}

/// Verify every log (or `origin`) of the database or export at `path`.
async fn verify_reports(
    path: &str,
    origin: Option<String>,
    witnesses: &[NoteVerifier],
) -> Result<Vec<LogReport>> {
    if is_export(path) {
        let file = open_export(path)?;
        let mut bar: Option<(String, indicatif::ProgressBar)> = None;
        let mut reports = mesh_ledger::export::verify_export(file, witnesses, |o, done, total| {
            if bar.as_ref().is_none_or(|(name, _)| name != o) {
                if let Some((_, b)) = bar.take() {
                    b.finish_and_clear();
                }
                bar = progress_bar(o).map(|b| (o.to_owned(), b));
            }
            if let Some((_, b)) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .with_context(|| format!("reading the export {path}"))?;
        if let Some((_, b)) = bar {
            b.finish_and_clear();
        }
        if let Some(o) = origin {
            reports.retain(|r| r.origin == o);
            if reports.is_empty() {
                bail!("no log {o:?} in this export");
            }
        }
        return Ok(reports);
    }
    let store = open_db(path).await?;
    let origins = match &origin {
        Some(o) => vec![o.clone()],
        None => store.origins().await?,
    };
    let mut reports = Vec::new();
    for origin in &origins {
        let bar = progress_bar(origin);
        let report = verify_log(&store, origin, witnesses, |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .await?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        reports.push(report);
    }
    // Rows outside every log are faults of the whole ledger.
    if origin.is_none() {
        reports.extend(orphan_rows(&store).await?);
    }
    Ok(reports)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Verify {
            path,
            origin,
            witnesses,
            witness_dids,
            bundle,
            require,
            json,
        } => {
            let mut witnesses: Vec<NoteVerifier> = witnesses
                .iter()
                .map(|w| NoteVerifier::from_vkey(w).with_context(|| format!("--witness {w:?}")))
                .collect::<Result<_>>()?;
            let mut dids: Vec<mesh_iatp::Did> = witness_dids
                .iter()
                .map(|d| d.parse().with_context(|| format!("--witness-did {d:?}")))
                .collect::<Result<_>>()?;
            if let Some(file) = &bundle {
                let text =
                    std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
                let b = mesh_iatp::TrustBundle::from_toml_str(&text)
                    .with_context(|| format!("{file} is not a valid trust bundle"))?;
                dids.extend(b.orgs().iter().map(|o| o.root.clone()));
            }
            for did in dids {
                witnesses.push(mesh_ledger::checkpoint::witness_verifier(
                    did.as_str(),
                    did.clone(),
                )?);
            }
            let required = required_witnesses(&require, &witnesses)?;
            let mut reports = verify_reports(&path, origin, &witnesses).await?;
            for r in &mut reports {
                r.require(&required);
            }
            let sound = reports.iter().all(LogReport::is_sound);
            if json {
                let out: Vec<_> = reports
                    .iter()
                    .map(|r| {
                        json!({
                            "origin": r.origin, "records": r.records, "root": hex::encode(r.root),
                            "checkpoints": r.checkpoints, "cosignatures": r.cosignatures,
                            "unknown_cosigners": r.unknown_cosigners,
                            "faults": r.faults.iter().map(|f| json!({"location": f.location, "what": f.what})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                out!("{}", json!({ "sound": sound, "logs": out }));
            } else {
                for r in &reports {
                    out!(
                        "{}: {} records, root {}, {} checkpoints, {} cosignatures verified, {} from unknown witnesses, {} faults",
                        r.origin,
                        r.records,
                        hex::encode(r.root),
                        r.checkpoints,
                        r.cosignatures,
                        r.unknown_cosigners,
                        r.faults.len()
                    );
                    for f in &r.faults {
                        out!("  FAULT {f}");
                    }
                }
                let unknown: usize = reports.iter().map(|r| r.unknown_cosigners).sum();
                if unknown > 0 {
                    out!(
                        "{unknown} cosignatures are by witnesses not given, so not checked: name \
                         them with --witness VKEY, --witness-did DID or --bundle FILE"
                    );
                }
                out!(
                    "{}",
                    if sound {
                        "ledger is sound"
                    } else {
                        "ledger has faults"
                    }
                );
            }
            Ok(if sound {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Prove {
            path,
            index,
            origin,
        } => {
            let log = open_audited_log(&path, origin).await?;
            let note = log
                .latest_checkpoint()
                .await?
                .context("the log has no checkpoint to prove against")?;
            let verifier = mesh_ledger::checkpoint::log_verifier(log.origin(), log.key().clone())?;
            let (cp, _) = mesh_ledger::checkpoint::open_checkpoint(&note, &verifier)?;
            if index >= cp.size {
                bail!(
                    "index {index} is not covered by the latest checkpoint (size {})",
                    cp.size
                );
            }
            let record = log.record(index).await?;
            let proof = log.inclusion_proof(index, cp.size).await?;
            verify_inclusion(index, cp.size, &record.leaf_hash(), &proof, &cp.root)
                .context("the generated proof does not verify")?;
            out!(
                "{}",
                json!({
                    "origin": log.origin(), "index": index, "tree_size": cp.size, "root": hex::encode(cp.root),
                    "leaf": hex::encode(record.bytes()), "leaf_hash": hex::encode(record.leaf_hash()),
                    "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                    "checkpoint": String::from_utf8_lossy(&note),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Consistency {
            path,
            from,
            to,
            origin,
        } => {
            let log = open_audited_log(&path, origin).await?;
            let proof = log.consistency_proof(from, to).await?;
            let (old_root, new_root) = (log.root_at(from).await?, log.root_at(to).await?);
            verify_consistency(from, to, &proof, &old_root, &new_root)
                .context("the generated proof does not verify")?;
            out!(
                "{}",
                json!({
                    "origin": log.origin(), "from": from, "to": to,
                    "from_root": hex::encode(old_root), "to_root": hex::encode(new_root),
                    "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            path,
            index,
            origin,
        } => {
            let mut audited = open_for_audit(&path).await?;
            match index {
                Some(i) => {
                    let log = audited.pick(origin).await?;
                    let rec = log.record(i).await?;
                    let r = rec.record();
                    out!(
                        "{}",
                        json!({
                            "origin": log.origin(), "index": i, "kind": format!("{:?}", r.kind).to_lowercase(),
                            "actor": r.actor.to_string(), "counterparty": r.counterparty.to_string(),
                            "grant": r.grant.map(hex::encode), "payload_digest": hex::encode(r.payload_digest),
                            "timestamp": r.timestamp.0, "nonce": hex::encode(r.nonce),
                            "leaf_hash": hex::encode(rec.leaf_hash()), "signatures": "actor and counterparty verified",
                        })
                    );
                }
                None => {
                    for o in audited.origins().await? {
                        let log = audited.log(&o).await?;
                        out!(
                            "{o}: {} records, root {}, log key {}",
                            log.size(),
                            hex::encode(log.root()),
                            log.key()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { path, origin } => {
            let log = open_audited_log(&path, origin).await?;
            let note = log
                .latest_checkpoint()
                .await?
                .context("the log has no checkpoint yet")?;
            emit_raw(&String::from_utf8_lossy(&note))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { path, out } => {
            if is_export(&path) {
                bail!("{path} is already an export");
            }
            let store = open_db(&path).await?;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("cannot create {out} (it must not exist yet)"))?;
            let mut writer = std::io::BufWriter::new(file);
            let n = mesh_ledger::export::export(&store, &mut writer).await?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            eprintln!("{n} records written to {out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Populate {
            db,
            records,
            agents,
            batch,
        } => {
            let size = mesh_ledger::populate::populate(
                &db,
                records,
                agents as usize,
                batch as usize,
                &mut std::io::stdout(),
            )
            .await?;
            eprintln!(
                "{size} records in {db}; verify with: mesh-ledger verify {db} --witness {}",
                mesh_ledger::populate::witness().to_vkey()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
