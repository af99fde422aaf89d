//! The report's *Beyond one machine* section: the fleet cases against the single cold
//! build of the family, and a paper estimate for six architectures on N runners worked
//! out from the measured figures.

use serde_json::Value;

use crate::cases::{FAMILY, RUNNER_B, SHARD_1, SHARD_2, State};
use crate::measure::{Measured, Results};

/// The architectures a whole Debian family is built for in the estimate.
const ARCHES: f64 = 6.0;

/// Distinct architectures and layers made in a build summary.
fn arches_and_layers(summary: Option<&Value>) -> Option<(f64, f64)> {
    let s = summary?;
    let mut arches: Vec<&str> = s["images"]
        .as_array()?
        .iter()
        .filter_map(|i| i["arch"].as_str())
        .collect();
    arches.sort_unstable();
    arches.dedup();
    Some((arches.len() as f64, s["layers"]["made"].as_f64()?))
}

/// The section's lines, or none when the fleet cases did not run.
pub fn section(results: &Results) -> Option<Vec<String>> {
    let get = |key: &'static str, state| results.get(&(key, state));
    let cold: &Measured = get(FAMILY.key, State::Cold)?;
    let b = get(RUNNER_B.key, State::RegistryWarm)?;
    let (s1, s2) = (
        get(SHARD_1.key, State::Cold)?,
        get(SHARD_2.key, State::Cold)?,
    );
    let (arches, layers) = arches_and_layers(cold.summary.as_ref())?;
    let two = s1.wall.max(s2.wall);
    let secs = |x: f64| format!("{x:.2} s");
    let ratio = |x: f64| format!("{:.1}×", cold.wall / x);
    let mut l = vec![
        "## Beyond one machine".to_owned(),
        String::new(),
        "The family on one runner from nothing (*cold*, above) against: runner B, whose only"
            .to_owned(),
        "cache is the registry layer cache another runner filled (`--cache-registry`, a local"
            .to_owned(),
        "docker-registry; empty `--cache-dir`, so every layer is downloaded and verified, no"
            .to_owned(),
        ".deb read); and two shards (`--shard 1/2`, `2/2`), each from nothing, timed one after"
            .to_owned(),
        "the other here; on two runners they run at once, so the fleet's wall is the slower one"
            .to_owned(),
        "(plus `debless index`, a few requests per tag).".to_owned(),
        String::new(),
        "| | wall | peak RSS | layers | single cold / this |".to_owned(),
        "|---|---:|---:|---|---:|".to_owned(),
    ];
    for (name, m) in [
        ("single runner, cold", cold),
        ("runner B, registry cache warm", b),
        ("shard 1/2, cold", s1),
        ("shard 2/2, cold", s2),
    ] {
        l.push(format!(
            "| {name} | {} | {} MiB | {} | {} |",
            secs(m.wall),
            m.rss_kib / 1024,
            m.layers,
            ratio(m.wall)
        ));
    }
    l.push(format!(
        "| two runners (slower shard) | {} | | | {} |",
        secs(two),
        ratio(two)
    ));
    // Per architecture: the cold family's cost spread over its architectures; its layers
    // cost about the same on each (the same packages, rebuilt per architecture).
    let per_arch_cold = cold.wall / arches;
    let per_arch_b = b.wall / arches;
    let per_layer = cold.wall / layers.max(1.0);
    l.extend([
        String::new(),
        format!(
            "**Paper estimate, {ARCHES:.0} architectures.** Measured here: the cold family is {} for {arches:.0}",
            secs(cold.wall)
        ),
        format!(
            "architectures and {layers:.0} layers, about {} per layer and {} per architecture; runner B",
            secs(per_layer),
            secs(per_arch_cold)
        ),
        format!(
            "takes {} per architecture. With `--shard I/N` splitting architecture first, a runner",
            secs(per_arch_b)
        ),
        format!(
            "builds ceil({ARCHES:.0}/N) architectures, so on runners like this one (same CPUs, the registry"
        ),
        "as near as loopback; a real one adds the layers' compressed bytes over its bandwidth):"
            .to_owned(),
        String::new(),
        "| runners N | cold, no cache | registry cache warm |".to_owned(),
        "|---:|---:|---:|".to_owned(),
    ]);
    for n in [1.0f64, 2.0, 3.0, 6.0] {
        let share = (ARCHES / n).ceil();
        l.push(format!(
            "| {n:.0} | {} | {} |",
            secs(share * per_arch_cold),
            secs(share * per_arch_b)
        ));
    }
    l.extend([
        String::new(),
        "A snapshot bump that changes a few packages makes only the layers holding them (each"
            .to_owned(),
        format!(
            "about {} here) and takes the rest from the registry cache.",
            secs(per_layer)
        ),
        String::new(),
    ]);
    Some(l)
}
