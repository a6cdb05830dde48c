//! Writing results: `results.json`, `timeline.csv`, and plots as PNG and
//! SVG (plotters); for sweeps, a table as CSV and Markdown and its plot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::model::{Results, RoundStats, Run};

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No font for the plots' labels.
    #[error(
        "no TrueType font for plot labels (looked for {0}); install Debian's fonts-dejavu-core or set MESH_SIM_FONT to a .ttf file"
    )]
    NoFont(String),
    /// plotters failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// JSON encoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where fonts are looked for, in order (after `MESH_SIM_FONT`).
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Register a sans-serif font with plotters once per process.
fn font() -> Result<(), OutputError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates: Vec<String> = std::env::var("MESH_SIM_FONT")
                .into_iter()
                .chain(FONT_PATHS.iter().map(|s| s.to_string()))
                .collect();
            for path in &candidates {
                if let Ok(bytes) = std::fs::read(path) {
                    // plotters keeps a 'static reference: the font lives
                    // for the process, loaded once.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                        .is_ok()
                    {
                        return Ok(());
                    }
                }
            }
            Err(candidates.join(", "))
        })
        .clone()
        .map_err(OutputError::NoFont)
}

/// One line of a chart.
pub struct Series {
    /// Legend.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
}

struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    series: &'a [Series],
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(c.x_range.0..c.x_range.1, c.y_range.0..c.y_range.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(c.x_label)
        .y_desc(c.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for s in c.series {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Something drawable on any plotters backend.
trait Figure {
    fn draw_on<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

impl Figure for Chart<'_> {
    fn draw_on<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self)
    }
}

/// A bar chart: a title and (label, count) bars.
struct Bars<'a> {
    title: &'a str,
    items: &'a [(String, u64)],
}

impl Figure for Bars<'_> {
    fn draw_on<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_bars(root, self.title, self.items)
    }
}

/// Draw `figure` to `base.png` and `base.svg`.
fn render(base: &Path, figure: &impl Figure) -> Result<Vec<PathBuf>, OutputError> {
    font()?;
    let png = base.with_extension("png");
    let svg = base.with_extension("svg");
    let fail = |path: &Path, reason: String| OutputError::Plot {
        path: path.display().to_string(),
        reason,
    };
    figure
        .draw_on(BitMapBackend::new(&png, (900, 540)).into_drawing_area())
        .map_err(|e| fail(&png, e))?;
    figure
        .draw_on(SVGBackend::new(&svg, (900, 540)).into_drawing_area())
        .map_err(|e| fail(&svg, e))?;
    Ok(vec![png, svg])
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    items: &[(String, u64)],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let n = items.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..max * 1.15)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("count over the run")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v as f64)],
                MALICIOUS.mix(0.8).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (k, v))| {
            Text::new(
                format!("{k}: {v}"),
                (i as f64 + 0.15, *v as f64 + max * 0.03),
                ("sans-serif", 14).into_font(),
            )
        }))
        .map_err(|e| e.to_string())?;
    if items.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "no refusals".to_string(),
                (0.4, max * 0.5),
                ("sans-serif", 16).into_font(),
            )))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

const HONEST: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const MALICIOUS: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const GATED: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const UNGATED: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

/// Write a run's `results.json` and `timeline.csv` into `dir`, then its
/// plots. The data files are written even if the plots cannot be; the
/// files written come back with the plot error, if any.
/// `baseline`, when given, is the same scenario's timeline without the
/// gate, drawn beside the run's.
pub fn write_run(
    dir: &Path,
    run: &Run,
    baseline: Option<&[RoundStats]>,
) -> (Vec<PathBuf>, Option<OutputError>) {
    let mut written = Vec::new();
    let data = (|| -> Result<(), OutputError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json = dir.join("results.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&run.results)?).map_err(io(&json))?;
        written.push(json);
        let csv = dir.join("timeline.csv");
        let mut f = std::fs::File::create(&csv).map_err(io(&csv))?;
        writeln!(
            f,
            "round,tasks,delegated,to_malicious,failed,inauthentic,refused,mean_score_honest,mean_score_malicious"
        )
        .map_err(io(&csv))?;
        for r in &run.timeline {
            writeln!(
                f,
                "{},{},{},{},{},{},{},{:.3},{:.3}",
                r.round,
                r.tasks,
                r.delegated,
                r.to_malicious,
                r.failed,
                r.inauthentic,
                r.refused,
                r.mean_score_honest,
                r.mean_score_malicious
            )
            .map_err(io(&csv))?;
        }
        written.push(csv);
        Ok(())
    })();
    if let Err(e) = data {
        return (written, Some(e));
    }
    match plots(dir, run, baseline) {
        Ok(mut p) => {
            written.append(&mut p);
            (written, None)
        }
        Err(e) => (written, Some(e)),
    }
}

/// "gate on (min_trust 400)" or "gate off", for titles.
fn gate_setting(r: &Results) -> String {
    if r.gate_enabled {
        format!("gate on (min_trust {})", r.min_trust)
    } else {
        "gate off".into()
    }
}

/// Each round's share of its tasks delegated to malicious agents.
fn to_malicious_share(timeline: &[RoundStats]) -> Vec<(f64, f64)> {
    timeline
        .iter()
        .map(|r| {
            let f = if r.tasks == 0 {
                0.0
            } else {
                r.to_malicious as f64 / r.tasks as f64
            };
            (r.round as f64, f)
        })
        .collect()
}

fn plots(
    dir: &Path,
    run: &Run,
    baseline: Option<&[RoundStats]>,
) -> Result<Vec<PathBuf>, OutputError> {
    let r = &run.results;
    let rounds = run.timeline.len().max(1) as f64;
    let setting = gate_setting(r);
    let mut out = Vec::new();
    let mut trust = vec![
        Series {
            label: "honest agents".into(),
            points: run
                .timeline
                .iter()
                .map(|r| (r.round as f64, r.mean_score_honest))
                .collect(),
            color: HONEST,
        },
        Series {
            label: "malicious agents".into(),
            points: run
                .timeline
                .iter()
                .map(|r| (r.round as f64, r.mean_score_malicious))
                .collect(),
            color: MALICIOUS,
        },
    ];
    if r.gate_enabled {
        let m = f64::from(r.min_trust);
        trust.push(Series {
            label: format!("min_trust {}", r.min_trust),
            points: vec![(1.0, m), (rounds, m)],
            color: UNGATED,
        });
    }
    let title = format!("{}: mean global trust by class, {setting}", r.scenario);
    out.extend(render(
        &dir.join("trust_over_time"),
        &Chart {
            title: &title,
            x_label: "round",
            y_label: "mean global score (0-1000)",
            x_range: (1.0, rounds),
            y_range: (0.0, 1000.0),
            series: &trust,
        },
    )?);
    let mut frac = vec![Series {
        label: setting.clone(),
        points: to_malicious_share(&run.timeline),
        color: if r.gate_enabled { GATED } else { MALICIOUS },
    }];
    if let Some(b) = baseline {
        frac.push(Series {
            label: "gate off (same scenario and seed)".into(),
            points: to_malicious_share(b),
            color: UNGATED,
        });
    }
    let title = format!("{}: tasks delegated to malicious agents", r.scenario);
    out.extend(render(
        &dir.join("to_malicious_over_time"),
        &Chart {
            title: &title,
            x_label: "round",
            y_label: "share of the round's tasks",
            x_range: (1.0, rounds),
            y_range: (0.0, 1.0),
            series: &frac,
        },
    )?);
    let mut counts: Vec<(String, u64)> = r.refusals.iter().map(|(k, v)| (k.clone(), *v)).collect();
    counts.push(("failed tasks".into(), r.failed));
    let title = format!(
        "{}: gate refusals by rule, failed tasks and requests, {setting}",
        r.scenario
    );
    out.extend(render(
        &dir.join("refusals"),
        &Bars {
            title: &title,
            items: &counts,
        },
    )?);
    Ok(out)
}

/// One cell of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The scenario's name.
    pub scenario: String,
    /// The swept parameter's value.
    pub value: f64,
    /// Headline figure with trust gating.
    pub gated: f64,
    /// Headline figure without it.
    pub ungated: f64,
    /// Share of tasks that failed, with trust gating.
    pub failed_gated: f64,
    /// …and without.
    pub failed_ungated: f64,
    /// Share of tasks that failed at a malicious agent, with trust gating.
    pub inauthentic_gated: f64,
    /// …and without.
    pub inauthentic_ungated: f64,
    /// Gini coefficient of the work honest agents received, with gating.
    pub gini_gated: f64,
    /// The gated run's `min_trust`.
    pub min_trust: u16,
}

/// Write a sweep's `sweep.csv`, `sweep.md` and its plot into `dir`.
pub fn write_sweep(
    dir: &Path,
    param: &str,
    rows: &[SweepRow],
) -> (Vec<PathBuf>, Option<OutputError>) {
    let mut written = Vec::new();
    let data = (|| -> Result<(), OutputError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let csv = dir.join("sweep.csv");
        let mut text = format!(
            "scenario,{param},to_malicious_gated,to_malicious_ungated,failed_gated,failed_ungated,\
             inauthentic_gated,inauthentic_ungated,gini_gated\n"
        );
        for r in rows {
            text.push_str(&format!(
                "{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
                r.scenario,
                r.value,
                r.gated,
                r.ungated,
                r.failed_gated,
                r.failed_ungated,
                r.inauthentic_gated,
                r.inauthentic_ungated,
                r.gini_gated
            ));
        }
        std::fs::write(&csv, text).map_err(io(&csv))?;
        written.push(csv);
        let md = dir.join("sweep.md");
        std::fs::write(&md, markdown_table(param, rows)).map_err(io(&md))?;
        written.push(md);
        Ok(())
    })();
    if let Err(e) = data {
        return (written, Some(e));
    }
    let mut scenarios: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    for s in scenarios {
        let pick = |f: fn(&SweepRow) -> f64| -> Vec<(f64, f64)> {
            rows.iter()
                .filter(|r| r.scenario == s)
                .map(|r| (r.value, f(r)))
                .collect()
        };
        let series = [
            Series {
                label: "gate on".into(),
                points: pick(|r| r.gated),
                color: GATED,
            },
            Series {
                label: "gate off".into(),
                points: pick(|r| r.ungated),
                color: UNGATED,
            },
        ];
        let max_x = rows.iter().map(|r| r.value).fold(0.0, f64::max).max(0.1);
        let mut floors: Vec<u16> = rows
            .iter()
            .filter(|r| r.scenario == s)
            .map(|r| r.min_trust)
            .collect();
        floors.dedup();
        let title = match floors.as_slice() {
            [m] => format!("{s}: tasks delegated to malicious agents (gate at min_trust {m})"),
            _ => format!("{s}: tasks delegated to malicious agents"),
        };
        match render(
            &dir.join(format!("sweep_{s}")),
            &Chart {
                title: &title,
                x_label: param,
                y_label: "share of all tasks",
                x_range: (0.0, max_x),
                y_range: (0.0, 1.0),
                series: &series,
            },
        ) {
            Ok(mut p) => written.append(&mut p),
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

/// The sweep as Markdown: one table of the share of tasks delegated to
/// malicious agents, one of the share that failed there (inauthentic); a
/// row per scenario, a column per value, "gated / ungated" in each cell.
pub fn markdown_table(param: &str, rows: &[SweepRow]) -> String {
    let mut out = table(
        &format!(
            "Fraction of tasks delegated to malicious agents, with / without trust gating, by `{param}`."
        ),
        rows,
        |r| (r.gated, r.ungated),
    );
    out.push('\n');
    out.push_str(&table(
        &format!(
            "Fraction of tasks that failed at a malicious agent (inauthentic), with / without trust gating, by `{param}`."
        ),
        rows,
        |r| (r.inauthentic_gated, r.inauthentic_ungated),
    ));
    out
}

fn table(caption: &str, rows: &[SweepRow], cell: fn(&SweepRow) -> (f64, f64)) -> String {
    let mut values: Vec<f64> = rows.iter().map(|r| r.value).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let mut scenarios: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    let mut out = format!("{caption}\n\n| scenario |");
    for v in &values {
        out.push_str(&format!(" {v} |"));
    }
    out.push_str("\n| --- |");
    for _ in &values {
        out.push_str(" --- |");
    }
    out.push('\n');
    for s in scenarios {
        out.push_str(&format!("| {s} |"));
        for v in &values {
            match rows.iter().find(|r| r.scenario == s && r.value == *v) {
                Some(r) => {
                    let (g, u) = cell(r);
                    out.push_str(&format!(" {g:.3} / {u:.3} |"));
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}
