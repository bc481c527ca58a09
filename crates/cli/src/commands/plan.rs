//! `sweep plan STUDY.yaml`: the expanded trials (id, variant, seed, params, shared runs)
//! without running anything. Checks every input a run reads, so mistakes surface in
//! seconds; exits non-zero with the error on stderr.

use std::path::{Path, PathBuf};

use clap::Args;
use runner::Plan;
use serde_json::json;
use spec::Study;

use crate::commands::launch;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The study YAML (see docs/experiment-format.md).
    pub study: PathBuf,
    /// Print a JSON array to stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip reading datasets, vocabularies and model folders (only the YAML is checked).
    #[arg(long)]
    pub no_check_files: bool,
    /// With slurm: print the sbatch script `sweep run --executor slurm` would submit.
    #[arg(long, value_enum, default_value_t = launch::Executor::Local)]
    pub executor: launch::Executor,
    /// Where trial folders would go (for the script's paths).
    #[arg(long, default_value = "results")]
    pub workdir: PathBuf,
    #[command(flatten)]
    pub slurm: launch::SlurmArgs,
}

/// Parses, expands and (unless told not to) checks a study's inputs.
pub fn load(path: &Path, check_files: bool) -> anyhow::Result<Plan> {
    let study = Study::from_yaml_file(path)?;
    let plan = runner::plan_with(&study, check_files)?;
    if check_files {
        let report = runner::check::check_inputs(&plan)?;
        for (p, n) in &report.datasets {
            tracing::debug!("dataset {}: {n} questions", p.display());
        }
    }
    Ok(plan)
}

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let plan = load(&args.study, !args.no_check_files)?;
    if args.executor == launch::Executor::Slurm {
        let spec = args.slurm.merged(&plan.study)?;
        let cmd = launch::trial_command()?;
        print!(
            "{}",
            runner::slurm::preview_script(&plan, &args.workdir, &spec, &cmd)?
        );
        return Ok(());
    }
    if args.json {
        let rows: Vec<_> = plan
            .entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.trial_id,
                    "variant": e.trial.variant,
                    "ablation": e.trial.ablation,
                    "grid_point": e.trial.grid_point,
                    "seed": e.trial.seed,
                    "params": e.trial.params,
                    "duplicate_of": e.duplicate_of,
                    "duplicate_reason": e.duplicate_reason,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print!("{}", render(&plan));
    Ok(())
}

fn render(plan: &Plan) -> String {
    let w = plan
        .entries
        .iter()
        .map(|e| e.trial.variant.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let seeds = match &plan.study.seeds {
        spec::study::Seeds::List(l) => format!("{} seeds", l.len()),
        spec::study::Seeds::Sequential(s) => format!(
            "{} seeds to start, up to {} for claims still undecided (looks at {:?})",
            s.min,
            s.max,
            plan.study.seeds.looks()
        ),
    };
    let mut out = match &plan.study.search {
        Some(search) => format!(
            "study {}: a {} search of {} suggestions × {seeds} for {} {}; the first {} (made before any result):\n",
            plan.study.name,
            format!("{:?}", search.method).to_lowercase(),
            search.trials,
            format!("{:?}", search.objective.direction).to_lowercase(),
            search.objective.metric.label(),
            plan.entries.len() / plan.study.seeds.initial().max(1),
        ),
        None => format!(
            "study {}: {} trials ({} variants × {seeds}), {} distinct runs\n",
            plan.study.name,
            plan.entries.len(),
            plan.study.variant_names().len(),
            plan.distinct_trials()
        ),
    };
    out.push_str(&format!(
        "{:>4}  {:<16}  {:<w$}  {:>5}  params\n",
        "#", "id", "variant", "seed"
    ));
    for e in &plan.entries {
        let params = serde_json::to_string(&e.trial.params).unwrap_or_default();
        let dup = e
            .duplicate_of
            .as_ref()
            .map(|d| format!("  (= {d})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:>4}  {:<16}  {:<w$}  {:>5}  {params}{dup}\n",
            e.trial.ordinal, e.trial_id, e.trial.variant, e.trial.seed
        ));
    }
    let mut notes: Vec<&String> = plan
        .entries
        .iter()
        .filter_map(|e| e.duplicate_reason.as_ref())
        .collect();
    notes.dedup();
    if !notes.is_empty() {
        out.push_str("\nshared runs:\n");
        for n in notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    if let Some(prune) = plan.study.search.as_ref().and_then(|s| s.prune.as_ref()) {
        out.push_str(&format!(
            "\npruning (ASHA): at steps {}, {}, … a trial goes on only if its {} is among the best 1/{} of the trials that got there\n",
            prune.min_steps,
            prune.min_steps.saturating_mul(prune.reduction),
            prune.metric.label(),
            prune.reduction
        ));
    }
    out.push_str(&power_text(plan));
    out
}

/// What each claim can detect with the study's seeds (docs/report.md, "Planning seeds"):
/// claims with the same kind and margin share one line.
fn power_text(plan: &Plan) -> String {
    let study = &plan.study;
    if study.claims.is_empty() {
        return String::new();
    }
    // A claim whose variant only repeats the baseline's runs needs no test.
    let inert = |variant: &str| {
        let mut entries = plan
            .entries
            .iter()
            .filter(|e| e.trial.ablation == variant)
            .peekable();
        entries.peek().is_some()
            && entries.all(|e| {
                e.duplicate_of
                    .as_deref()
                    .is_some_and(|d| d.ends_with(spec::BASELINE))
            })
    };
    let (tested, untested): (Vec<&spec::Claim>, Vec<&spec::Claim>) =
        study.claims.iter().partition(|c| !inert(&c.variant));
    let points = stats::study::family_size(study) / study.claims.len().max(1);
    let family = tested.len() * points;
    let target = match &study.seeds {
        spec::study::Seeds::Sequential(s) => s.target_effect,
        spec::study::Seeds::List(_) => None,
    };
    let max = study.seeds.looks().last().copied().unwrap_or(0);
    let mut out = format!("\nclaims: {family} tested together under Holm");
    if !untested.is_empty() {
        let names: Vec<&str> = untested.iter().map(|c| c.variant.as_str()).collect();
        out.push_str(&format!(
            " ({} the same as the baseline by construction: no test)",
            names.join(", ")
        ));
    }
    out.push('\n');
    // Claims of one kind and margin share a line: (kind, margin bits), sentence, claims.
    type Line = ((spec::Expect, Option<u64>), String, Vec<String>);
    let mut lines: Vec<Line> = Vec::new();
    for claim in tested {
        let key = (claim.expect, claim.margin.map(f64::to_bits));
        let name = format!("{} {}", claim.variant, claim.metric.label());
        match lines.iter_mut().find(|(k, ..)| *k == key) {
            Some((_, _, names)) => names.push(name),
            None => {
                let d = stats::study::detectable(study, claim, family, None, target);
                lines.push((key, d.sentence(max), vec![name]));
            }
        }
    }
    for (_, sentence, names) in lines {
        out.push_str(&format!("  {}: {sentence}\n", names.join(", ")));
    }
    out
}
