//! Timing a child process: wall time, and from its rusage (wait4, as GNU time reads it)
//! peak RSS and bytes written; each case `BENCH_RUNS` times, the median reported.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command as Process, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::Ctx;
use crate::cases::{Case, Command, State};
use crate::files;

/// One run of a command.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall time, seconds.
    pub wall: f64,
    /// The largest process's maximum resident set, KiB (the child or any descendant it
    /// waited for).
    pub rss_kib: u64,
    /// What the process tree wrote to file systems, bytes (temporary files included).
    pub written: u64,
}

/// What a case measured: the median wall time and the highest peak RSS of its runs, the
/// rest from the last run.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Median wall time, seconds.
    pub wall: f64,
    /// Highest peak RSS, KiB.
    pub rss_kib: u64,
    /// Bytes written by the last run.
    pub written: u64,
    /// Size of the output (`--out`, or the peer's directory); 0 for a fetch.
    pub output: u64,
    /// How much the cache grew, for commands that use one.
    pub cache_growth: Option<i64>,
    /// Layers made and reused, from the `--json` summary ("-" for a fetch, "" for the
    /// peer).
    pub layers: String,
    /// The last run's `--json` summary, for builds.
    pub summary: Option<Value>,
}

/// Every case's result, by target key and state.
pub type Results = BTreeMap<(&'static str, State), Measured>;

/// The argument that makes the bench binary a timer (see [`timer_main`]).
pub const TIMER: &str = "--timer";

/// Run `argv` with stdout and stderr into files; fails (showing the end of stderr) if it
/// does.
///
/// The command is started by a small timer process (this binary again, in [`timer_main`]
/// mode), as GNU time would start it, never by the bench itself: on exec Linux carries
/// the RSS high-water mark of the address space the child was forked or vforked from
/// into the child's peak RSS, so a child of the bench would report at least the bench's
/// own peak (21 MiB instead of debless's 15 MiB for a warm build).
pub fn timed(argv: &[OsString], stdout: &Path, stderr: &Path) -> anyhow::Result<Sample> {
    let what = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out =
        File::create(stdout).with_context(|| format!("cannot create {}", stdout.display()))?;
    let err =
        File::create(stderr).with_context(|| format!("cannot create {}", stderr.display()))?;
    let report = stdout.with_extension("rusage");
    let exe = std::env::current_exe().context("cannot find the bench's own binary")?;
    let status = Process::new(exe)
        .arg(TIMER)
        .arg(&report)
        .arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("{line}");
        }
        bail!("failed ({status}): {what}");
    }
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("the timer wrote no {}", report.display()))?;
    Sample::parse(&text).with_context(|| format!("{}: not a timer report", report.display()))
}

/// The timer: `bench --timer REPORT -- COMMAND...` runs COMMAND with the timer's stdio,
/// writes its [`Sample`] to REPORT and exits with its status. Never returns.
pub fn timer_main(args: &[OsString]) -> ! {
    let code = match args {
        [report, dashdash, argv @ ..] if dashdash == "--" && !argv.is_empty() => {
            match run_timed(argv) {
                Ok((status, sample)) => match std::fs::write(report, sample.to_line()) {
                    Ok(()) => status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
                    Err(e) => {
                        eprintln!(
                            "bench timer: cannot write {}: {e}",
                            Path::new(report).display()
                        );
                        125
                    }
                },
                Err(e) => {
                    eprintln!("bench timer: {e:#}");
                    126
                }
            }
        }
        _ => {
            eprintln!("usage: bench {TIMER} REPORT -- COMMAND [ARG...]");
            2
        }
    };
    std::process::exit(code)
}

/// Run `argv` with inherited stdio; its exit status, wall time and rusage.
pub fn run_timed(argv: &[OsString]) -> anyhow::Result<(ExitStatus, Sample)> {
    let (program, args) = argv.split_first().context("an empty command line")?;
    let started = Instant::now();
    let child = Process::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    let (status, usage) = wait4(child.id())?;
    let sample = Sample {
        wall: started.elapsed().as_secs_f64(),
        // Linux reports ru_maxrss in KiB and ru_oublock in 512-byte blocks.
        rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        written: u64::try_from(usage.ru_oublock).unwrap_or(0) * 512,
    };
    Ok((status, sample))
}

impl Sample {
    /// `WALL RSS_KIB WRITTEN`, how the timer reports it.
    fn to_line(self) -> String {
        format!("{} {} {}\n", self.wall, self.rss_kib, self.written)
    }

    fn parse(line: &str) -> Option<Sample> {
        let mut words = line.split_whitespace();
        let sample = Sample {
            wall: words.next()?.parse().ok()?,
            rss_kib: words.next()?.parse().ok()?,
            written: words.next()?.parse().ok()?,
        };
        words.next().is_none().then_some(sample)
    }
}

/// Reap the child `pid` and return its exit status and resource usage (its own and that of
/// the descendants it waited for), which std's `wait` does not expose.
fn wait4(pid: u32) -> anyhow::Result<(ExitStatus, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).context("a child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child, and both pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4 failed");
        }
    }
}

/// The middle value; the mean of the two middle ones for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `BENCH_DIR/runs.tsv`: every single run, for a second look at the medians.
struct RunsLog(File);

impl RunsLog {
    fn create(path: &Path) -> anyhow::Result<RunsLog> {
        let mut f =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        writeln!(f, "case\tstate\trun\twall_s\trss_kib\twritten_bytes")?;
        Ok(RunsLog(f))
    }

    fn row(&mut self, case: &Case, run: usize, s: &Sample) -> anyhow::Result<()> {
        writeln!(
            self.0,
            "{}\t{}\t{run}\t{:.3}\t{}\t{}",
            case.target.key,
            case.state.name(),
            s.wall,
            s.rss_kib,
            s.written
        )?;
        Ok(())
    }
}

/// Every case in order, `BENCH_RUNS` times each.
pub fn measure_all(ctx: &Ctx, cases: &[Case]) -> anyhow::Result<Results> {
    // Checked before the first run, not an hour into the bench.
    let mut keys = std::collections::BTreeSet::new();
    for case in cases {
        if !keys.insert((case.target.key, case.state)) {
            bail!(
                "two cases measure {} {}: give one its own target or state",
                case.target.key,
                case.state.name()
            );
        }
    }
    let mut log = RunsLog::create(&ctx.cfg.bench_dir.join("runs.tsv"))?;
    let mut results = Results::new();
    for case in cases {
        let m = measure(ctx, case, &mut log)?;
        results.insert((case.target.key, case.state), m);
    }
    Ok(results)
}

fn measure(ctx: &Ctx, case: &Case, log: &mut RunsLog) -> anyhow::Result<Measured> {
    let runs = ctx.cfg.runs;
    let (stdout, stderr) = (ctx.tmp.join("stdout"), ctx.tmp.join("stderr"));
    let mut walls = Vec::with_capacity(runs);
    let mut peak = 0;
    let mut last = None;
    for run in 1..=runs {
        let dirs = case.state.prepare(ctx, &case.target)?;
        case.command.setup(ctx, &dirs)?;
        let argv = case.command.argv(ctx, &case.target, &dirs);
        let before = files::bytes(&dirs.cache)?;
        let s = timed(&argv, &stdout, &stderr)?;
        walls.push(s.wall);
        peak = peak.max(s.rss_kib);
        let cache_growth = match case.command.uses_cache() {
            true => Some(files::bytes(&dirs.cache)? as i64 - before as i64),
            false => None,
        };
        let output = match case.command.has_output() {
            true => files::bytes(&dirs.out)?,
            false => 0,
        };
        let (layers, summary) = match case.command {
            Command::Build | Command::BuildFromRegistry => {
                let summary: Option<Value> = std::fs::read(&stdout)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                (summary.as_ref().map_or("n/a".into(), layer_counts), summary)
            }
            Command::Fetch | Command::Pin => ("-".into(), None),
            Command::Peer => (String::new(), None),
        };
        log.row(case, run, &s)?;
        say!(
            "{} {} run {run}/{runs}: {:.3}s, peak RSS {} MiB",
            case.target.key,
            case.state.name(),
            s.wall,
            s.rss_kib / 1024
        );
        last = Some((s.written, output, cache_growth, layers, summary));
    }
    let (written, output, cache_growth, layers, summary) = last.context("BENCH_RUNS is 0")?;
    Ok(Measured {
        wall: median(&walls),
        rss_kib: peak,
        written,
        output,
        cache_growth,
        layers,
        summary,
    })
}

/// What a `--json` summary says about layers made and reused: top-level fields named
/// *layer* (objects flattened as `a.b`), and numeric per-image fields named *layer*
/// (summed), as `key=value`; "n/a" if there are none.
pub fn layer_counts(summary: &Value) -> String {
    fn flat(key: String, v: &Value, found: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    flat(format!("{key}.{k}"), v, found);
                }
            }
            Value::Array(_) => {}
            other => {
                found.insert(key, other.to_string());
            }
        }
    }
    let mut found = BTreeMap::new();
    if let Some(top) = summary.as_object() {
        for (k, v) in top.iter().filter(|(k, _)| k.contains("layer")) {
            flat(k.clone(), v, &mut found);
        }
    }
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for image in summary["images"].as_array().into_iter().flatten() {
        for (k, v) in image.as_object().into_iter().flatten() {
            if let (true, Some(n)) = (k.contains("layer"), v.as_f64()) {
                *sums.entry(format!("images.{k}")).or_default() += n;
            }
        }
    }
    found.extend(sums.into_iter().map(|(k, n)| (k, n.to_string())));
    if found.is_empty() {
        return "n/a".into();
    }
    found
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn layer_counts_from_a_build_summary() {
        let summary = serde_json::json!({
            "images": [{"image": "base", "layers": ["sha256:a"]}],
            "layers": {"total": 5, "made": 5, "cached": 0, "shared": 0},
            "debs": {"needed": 20},
        });
        assert_eq!(
            layer_counts(&summary),
            "layers.cached=0 layers.made=5 layers.shared=0 layers.total=5"
        );
        assert_eq!(layer_counts(&serde_json::json!({"images": []})), "n/a");
    }

    #[test]
    fn run_timed_reports_status_and_rusage() -> anyhow::Result<()> {
        let (status, s) = run_timed(&["sh", "-c", "exit 0"].map(OsString::from))?;
        assert!(status.success());
        assert!(s.rss_kib > 0);
        assert_eq!(
            Sample::parse(&s.to_line()).map(|p| p.rss_kib),
            Some(s.rss_kib)
        );
        let (status, _) = run_timed(&["sh", "-c", "exit 3"].map(OsString::from))?;
        assert_eq!(status.code(), Some(3));
        Ok(())
    }
}
