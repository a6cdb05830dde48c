//! `mesh-sim`: run a scenario, or sweep a parameter over several.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mesh_sim::output::{self, SweepRow};
use mesh_sim::scenario::Scenario;
use mesh_sim::{compare, harness, model, protocol};

/// Multi-agent simulations of the mesh's trust system.
#[derive(Parser)]
#[command(name = "mesh-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// The pure crates in a deterministic loop (100k agents).
    Model,
    /// The agents' real protocol (mesh-agent) on the deterministic
    /// harness: one thread, virtual time; the same seed, the same results.
    Protocol,
    /// Real mesh-node instances in one process, over libp2p's memory
    /// transport and SQLite ledgers (real time; not reproducible).
    Network,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario; writes results.json, timeline.csv and plots.
    Run {
        /// The scenario (TOML; docs/SIMULATIONS.md).
        scenario: PathBuf,
        /// How to run it.
        #[arg(long, value_enum, default_value = "model")]
        mode: Mode,
        /// Where the results go (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run a grid: each scenario × each value × with and without gating;
    /// writes sweep.csv, sweep.md and one plot per scenario.
    Sweep {
        /// One or more scenarios (one row of the table each).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// The dotted parameter, e.g. adversary.fraction.
        #[arg(long)]
        param: String,
        /// Comma-separated values.
        #[arg(long, value_delimiter = ',', required = true)]
        values: Vec<String>,
        /// Where the results go (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run each scenario in model and protocol mode, with and without
    /// gating, print the fractions side by side, and fail if any differ
    /// by more than --tolerance (docs/SIMULATIONS.md §3b).
    Compare {
        /// One or more scenarios.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Override a parameter in every scenario, e.g. --set agents=100
        /// (repeatable).
        #[arg(long, value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Largest difference accepted.
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", mesh_iatp::error_chain::one_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Write to stdout; a reader that went away (`| head`) ends the output
/// quietly instead of panicking.
fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().write_fmt(text);
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rounds ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_string());
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn report_written(written: &[PathBuf], plot_error: Option<output::OutputError>) -> Result<()> {
    for p in written {
        say(format_args!("wrote {}\n", p.display()));
    }
    if let Some(e) = plot_error {
        bail!(e);
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            scenario,
            mode,
            out,
        } => {
            let text = read(&scenario)?;
            let s = Scenario::from_toml_str(&text)
                .with_context(|| format!("{} is not a valid scenario", scenario.display()))?;
            let progress = bar(s.rounds, &s.name);
            let started = Instant::now();
            let result = match mode {
                Mode::Model => model::run(&s, |r| progress.set_position(r)),
                Mode::Protocol => harness::run(&s, |r| progress.set_position(r)),
                Mode::Network => {
                    let scratch =
                        protocol::scratch_dir().context("a directory for the nodes' ledgers")?;
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .context("starting the async runtime")?;
                    rt.block_on(protocol::run(&s, scratch.path(), |r| {
                        progress.set_position(r)
                    }))?
                }
            };
            progress.finish_and_clear();
            let r = &result.results;
            say(format_args!(
                "{}: {} agents ({} malicious, {}), {} rounds, gate {}, {} tasks: \
                 {:.1}% delegated to malicious agents, {:.1}% failed; {} refused by the gate, \
                 {} failed tasks, {} failed requests (by rule and reason in results.json); \
                 work over honest agents: Gini {:.2}, {} got none; {:.2} s\n",
                r.scenario,
                r.agents,
                r.malicious,
                r.strategy,
                r.rounds,
                if r.gate_enabled {
                    format!("on (min_trust {})", r.min_trust)
                } else {
                    "off".into()
                },
                r.tasks,
                100.0 * r.fraction_to_malicious,
                100.0 * r.fraction_failed,
                r.refused,
                r.failed,
                r.failed_requests,
                r.gini_honest_work,
                r.honest_without_work,
                started.elapsed().as_secs_f64()
            ));
            // The baseline the plots compare with: the same scenario and
            // seed without the gate (random choice among candidates, so
            // model mode gives it whatever the run's mode).
            let baseline = s.gate_enabled.then(|| {
                let mut ungated = s.clone();
                ungated.gate_enabled = false;
                model::run(&ungated, |_| {}).timeline
            });
            let (written, err) = output::write_run(&out, &result, baseline.as_deref());
            report_written(&written, err)
        }
        Command::Sweep {
            scenarios,
            param,
            values,
            out,
        } => {
            let mut rows = Vec::new();
            let total = (scenarios.len() * values.len() * 2) as u64;
            let progress = bar(total, "sweep");
            for path in &scenarios {
                let text = read(path)?;
                for v in &values {
                    let value: f64 = v
                        .trim()
                        .parse()
                        .with_context(|| format!("--values: {v:?} is not a number"))?;
                    let mut cell = [(0.0, 0.0, 0.0); 2];
                    let mut gini = 0.0;
                    let mut min_trust = 0;
                    let mut name = String::new();
                    for (k, gate) in ["true", "false"].iter().enumerate() {
                        let s = Scenario::from_toml_str_with(
                            &text,
                            &[(param.as_str(), v.trim()), ("gate.enabled", gate)],
                        )
                        .with_context(|| format!("{} with {param} = {v}", path.display()))?;
                        let r = model::run(&s, |_| {}).results;
                        cell[k] = (
                            r.fraction_to_malicious,
                            r.fraction_failed,
                            r.fraction_inauthentic,
                        );
                        if k == 0 {
                            gini = r.gini_honest_work;
                            min_trust = r.min_trust;
                            name = r.scenario;
                        }
                        progress.inc(1);
                    }
                    rows.push(SweepRow {
                        scenario: name,
                        value,
                        gated: cell[0].0,
                        ungated: cell[1].0,
                        failed_gated: cell[0].1,
                        failed_ungated: cell[1].1,
                        inauthentic_gated: cell[0].2,
                        inauthentic_ungated: cell[1].2,
                        gini_gated: gini,
                        min_trust,
                    });
                }
            }
            progress.finish_and_clear();
            say(format_args!("{}", output::markdown_table(&param, &rows)));
            let (written, err) = output::write_sweep(&out, &param, &rows);
            report_written(&written, err)
        }
        Command::Compare {
            scenarios,
            set,
            tolerance,
        } => {
            let mut sets = Vec::new();
            for s in &set {
                let (path, value) = s.split_once('=').with_context(|| {
                    format!("--set {s:?}: expected PATH=VALUE, e.g. agents=100")
                })?;
                sets.push((path.trim(), value.trim()));
            }
            let texts = scenarios
                .iter()
                .map(|p| Ok((p.display().to_string(), read(p)?)))
                .collect::<Result<Vec<_>>>()?;
            let progress = bar(4 * texts.len() as u64, "compare");
            progress.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let cells =
                compare::compare(&texts, &sets, || progress.inc(1)).map_err(|(path, e)| {
                    anyhow::anyhow!(e).context(format!("{path} is not a valid scenario"))
                })?;
            progress.finish_and_clear();
            say(format_args!("{}", compare::markdown(&cells, tolerance)));
            let apart: Vec<String> = cells
                .iter()
                .filter(|c| c.gap().is_nan() || c.gap() > tolerance)
                .map(|c| {
                    format!(
                        "{} (gate {})",
                        c.scenario,
                        if c.gate { "on" } else { "off" }
                    )
                })
                .collect();
            if !apart.is_empty() {
                bail!(
                    "the modes differ by more than {tolerance} in {}",
                    apart.join(", ")
                );
            }
            Ok(())
        }
    }
}
