//! A study (`experiments/*.yaml`): a base trial, an optional grid, optional one-factor
//! ablations, seeds and the claims the report checks. Format: `docs/experiment-format.md`.
//!
//! Parsing never panics on any input (property-tested); every error names the file, the
//! line and column where known, the key, and for typos the nearest valid key.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::search::Search;
pub use crate::seeds::Seeds;
use crate::suggest::{locate, with_suggestion};
use crate::trial::{SpecError, TrialConfig, DATA_KEYS, MODEL_KEYS};

/// The variant name of the unmodified base config.
pub const BASELINE: &str = "baseline";

/// What a claim expects of a variant compared with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Higher,
    Lower,
    Same,
}

pub use crate::metric::ClaimMetric;

/// "Variant X makes metric M higher/lower/the same as the baseline."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub variant: String,
    pub metric: ClaimMetric,
    pub expect: Expect,
    /// For `same`: the largest difference (in metric points) that still counts as the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

pub use crate::slurm::SlurmSpec;

/// Executor defaults a study may carry; command-line flags override them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAblation {
    name: String,
    set: serde_yaml::Mapping,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: String,
    #[serde(default)]
    description: Option<String>,
    base: TrialConfig,
    #[serde(default)]
    grid: serde_yaml::Mapping,
    #[serde(default)]
    ablations: Vec<RawAblation>,
    seeds: serde_yaml::Value,
    #[serde(default)]
    claims: Vec<Claim>,
    /// Family-wise error rate of the study's claims (Holm).
    #[serde(default)]
    alpha: Option<f64>,
    /// What a diverged run counts as in a claim.
    #[serde(default)]
    diverged_runs: Option<DivergedRuns>,
    #[serde(default)]
    executor: ExecutorSpec,
    #[serde(default)]
    search: Option<Search>,
}

/// The family-wise error rate of a study's claims unless it says otherwise.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// How a diverged run (NaN or exploding loss) enters a claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergedRuns {
    /// With the score it ended with (its last evaluation; 0 when it had none): divergence
    /// is an outcome of the configuration, and a claim about it should see it.
    #[default]
    Score,
    /// Not at all: the seed's pair is dropped from the claim (and counted in the report).
    Exclude,
}

/// One-factor variant of the base config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ablation {
    pub name: String,
    /// Dotted key → value, in the order written.
    pub set: Vec<(String, Value)>,
}

/// A parsed, validated study.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    pub name: String,
    pub description: Option<String>,
    pub base: TrialConfig,
    /// Dotted key → values, in the order written.
    pub grid: Vec<(String, Vec<Value>)>,
    pub ablations: Vec<Ablation>,
    pub seeds: Seeds,
    pub claims: Vec<Claim>,
    /// Family-wise error rate over the claims (Holm), default [`DEFAULT_ALPHA`].
    pub alpha: f64,
    pub diverged_runs: DivergedRuns,
    pub executor: ExecutorSpec,
    /// A search study's block: its trials are suggestions (`s01`, `s02`, …) that the
    /// runner asks the `search` crate for as results come in, instead of a fixed
    /// expansion.
    pub search: Option<Search>,
    /// The YAML text as read (stored with the results for reproducibility).
    pub source: String,
}

/// The `ablation` of every suggestion of a search study.
pub const SEARCH: &str = "search";

/// One trial of an expanded study, before ids and deduplication (the runner's job).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    /// Position in the expansion order (see [`Study::expand`]).
    pub ordinal: usize,
    /// Stable variant name: `baseline`, an ablation name, or with a grid
    /// `<grid point>/<baseline|ablation>`.
    pub variant: String,
    /// The ablation applied (`baseline` for none).
    pub ablation: String,
    /// The grid point's label (`learning_rate=3e-05,batch_size=4`), empty without a grid.
    pub grid_point: String,
    /// Every dotted key this trial sets on top of `base` (grid, then ablation).
    pub params: Map<String, Value>,
    pub seed: u64,
    pub config: TrialConfig,
}

impl Study {
    pub fn from_yaml_file(path: &Path) -> Result<Self, SpecError> {
        Self::from_yaml_str(&crate::trial::read_text(path)?, &path.display().to_string())
    }

    /// Parses and validates a study; `origin` names the source in errors.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, SpecError> {
        let raw: RawStudy = serde_yaml::from_str(text).map_err(|e| SpecError::Parse {
            path: origin.into(),
            message: with_suggestion(&e.to_string()),
        })?;
        let src = Source { text, origin };
        raw.base
            .validate(&format!("{origin} (base)"))
            .map_err(|e| relocate(e, &src.at(&["base"])))?;
        check_name("name", &raw.name).map_err(|m| src.invalid(&["name"], "name", m))?;
        let seeds =
            Seeds::from_yaml(&raw.seeds).map_err(|m| src.invalid(&["seeds"], "seeds", m))?;
        let alpha = raw.alpha.unwrap_or(DEFAULT_ALPHA);
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(src.invalid(
                &["alpha"],
                "alpha",
                format!("{alpha}: the family-wise error rate must be in (0, 0.5); 0.05 is usual"),
            ));
        }
        let grid = parse_grid(&raw.grid, &src)?;
        let ablations = parse_ablations(&raw.ablations, &grid, &src)?;
        if let Some(search) = &raw.search {
            check_search(search, &raw, &seeds, &src)?;
        }
        let names: BTreeSet<String> = ablations.iter().map(|a| a.name.clone()).collect();
        check_claims(&raw.claims, &names, &src)?;
        if let Some(slurm) = &raw.executor.slurm {
            slurm.validate().map_err(|e| {
                src.invalid(
                    &[
                        "executor",
                        "slurm",
                        e.key.split('[').next().unwrap_or(&e.key),
                    ],
                    &format!("executor.slurm.{}", e.key),
                    e.message,
                )
            })?;
        }
        let study = Study {
            name: raw.name,
            description: raw.description,
            base: raw.base,
            grid,
            ablations,
            seeds,
            claims: raw.claims,
            alpha,
            diverged_runs: raw.diverged_runs.unwrap_or_default(),
            executor: raw.executor,
            search: raw.search,
            source: text.to_string(),
        };
        // Every variant must form a valid trial: catches wrong value types and ranges
        // before anything runs. For a search, each end of each range (and each choice)
        // must.
        let initial = study.seeds.initial();
        study.expand_checked(origin, &|needles| src.at(needles), &|_| initial)?;
        if let Some(search) = &study.search {
            for (key, domain) in &search.space {
                for value in domain.extremes() {
                    let mut params = Map::new();
                    params.insert(key.clone(), value);
                    let variant = format!("{key}={}", params[key]);
                    study
                        .variant_trials(&variant, SEARCH, "", params, 1, origin)
                        .map_err(|e| relocate(e, &src.at(&["search", "space", key])))?;
                }
            }
        }
        Ok(study)
    }

    /// Expands the study into trials with the seeds every variant starts with (all of a
    /// fixed list; `min` of a sequential plan), in this order: grid points (the cartesian
    /// product in the order the keys are written, the last key varying fastest), then per
    /// point the baseline and each ablation in the order written, then per variant each
    /// seed in order.
    pub fn expand(&self) -> Result<Vec<PlannedTrial>, SpecError> {
        let initial = self.seeds.initial();
        self.expand_with(&|_| initial)
    }

    /// [`Self::expand`] with `seeds(variant)` seeds for each variant (the first ones of
    /// [`Seeds::all`]): how a sequential study grows as its claims ask for more.
    pub fn expand_with(
        &self,
        seeds: &dyn Fn(&str) -> usize,
    ) -> Result<Vec<PlannedTrial>, SpecError> {
        self.expand_checked("study", &|_| String::from("study"), seeds)
    }

    fn expand_checked(
        &self,
        origin: &str,
        at: &dyn Fn(&[&str]) -> String,
        seeds_of: &dyn Fn(&str) -> usize,
    ) -> Result<Vec<PlannedTrial>, SpecError> {
        let mut out = Vec::new();
        if self.search.is_some() {
            // A search's trials are made one suggestion at a time ([`Self::suggestion`]).
            return Ok(out);
        }
        let points = grid_points(&self.grid);
        let variants: Vec<(&str, &[(String, Value)])> = std::iter::once((BASELINE, &[][..]))
            .chain(
                self.ablations
                    .iter()
                    .map(|a| (a.name.as_str(), a.set.as_slice())),
            )
            .collect();
        for point in &points {
            let label = point_label(point);
            for (ablation, set) in &variants {
                let mut params = Map::new();
                for (k, v) in point.iter().copied().chain(set.iter().map(|(k, v)| (k, v))) {
                    params.insert(k.clone(), v.clone());
                }
                let variant = if label.is_empty() {
                    ablation.to_string()
                } else {
                    format!("{label}/{ablation}")
                };
                let name_key = format!("name: {ablation}");
                let here: &[&str] = if *ablation == BASELINE {
                    &["grid"]
                } else {
                    &["ablations", &name_key]
                };
                let trials = self
                    .variant_trials(
                        &variant,
                        ablation,
                        &label,
                        params,
                        seeds_of(&variant),
                        origin,
                    )
                    .map_err(|e| relocate(e, &at(here)))?;
                for mut t in trials {
                    t.ordinal = out.len();
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// The trials of one variant: `base` with `params` set, validated, once per seed (the
    /// first `seeds` of [`Seeds::all`]).
    fn variant_trials(
        &self,
        variant: &str,
        ablation: &str,
        label: &str,
        params: Map<String, Value>,
        seeds: usize,
        origin: &str,
    ) -> Result<Vec<PlannedTrial>, SpecError> {
        let mut doc = serde_json::to_value(&self.base).map_err(|e| SpecError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        for (k, v) in &params {
            set_dotted(&mut doc, k, v.clone());
        }
        let config: TrialConfig = serde_json::from_value(doc).map_err(|e| {
            let key = params.keys().next().cloned().unwrap_or_default();
            SpecError::Invalid {
                path: origin.into(),
                key: format!("variant {variant}"),
                message: format!("{e} (in {key} or the other keys it sets)"),
            }
        })?;
        config.validate(&format!("{origin} (variant {variant})"))?;
        let all_seeds = self.seeds.all();
        Ok(all_seeds[..seeds.min(all_seeds.len())]
            .iter()
            .map(|seed| {
                let mut config = config.clone();
                config.train.seed = *seed;
                PlannedTrial {
                    ordinal: 0,
                    variant: variant.to_string(),
                    ablation: ablation.to_string(),
                    grid_point: label.to_string(),
                    params: params.clone(),
                    seed: *seed,
                    config,
                }
            })
            .collect())
    }

    /// The trials (one per seed) of a search's suggestion `index` (0-based), which sets
    /// `params`; ordinals start at `first_ordinal`.
    pub fn suggestion(
        &self,
        index: usize,
        params: Map<String, Value>,
        first_ordinal: usize,
    ) -> Result<Vec<PlannedTrial>, SpecError> {
        let Some(search) = &self.search else {
            return Err(SpecError::Invalid {
                path: "study".into(),
                key: "search".into(),
                message: format!("study {} has no search: block", self.name),
            });
        };
        let variant = search.variant_name(index);
        let mut trials =
            self.variant_trials(&variant, SEARCH, "", params, self.seeds.initial(), "study")?;
        for (i, t) in trials.iter_mut().enumerate() {
            t.ordinal = first_ordinal + i;
        }
        Ok(trials)
    }

    /// The distinct variant names, in expansion order.
    pub fn variant_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.search.is_some() {
            return names;
        }
        for point in grid_points(&self.grid) {
            let label = point_label(&point);
            for a in std::iter::once(BASELINE).chain(self.ablations.iter().map(|a| &*a.name)) {
                names.push(if label.is_empty() {
                    a.to_string()
                } else {
                    format!("{label}/{a}")
                });
            }
        }
        names
    }
}

type Point<'a> = Vec<(&'a String, &'a Value)>;

fn grid_points(grid: &[(String, Vec<Value>)]) -> Vec<Point<'_>> {
    let mut points: Vec<Point<'_>> = vec![Vec::new()];
    for (k, values) in grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((k, v));
                    p
                })
            })
            .collect();
    }
    points
}

fn point_label(point: &Point<'_>) -> String {
    point
        .iter()
        .map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{short}={v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A study's text and its name, for errors that point at the line and column of a key.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    /// `origin:line:col` of the key reached through `needles`, or `origin` alone.
    fn at(&self, needles: &[&str]) -> String {
        match locate(self.text, needles) {
            Some((line, col)) => format!("{}:{line}:{col}", self.origin),
            None => self.origin.to_string(),
        }
    }

    fn invalid(&self, needles: &[&str], key: &str, message: String) -> SpecError {
        SpecError::Invalid {
            path: self.at(needles),
            key: key.into(),
            message,
        }
    }
}

/// `grid:`: each key a settable dotted key with a non-empty list of distinct values.
fn parse_grid(
    raw: &serde_yaml::Mapping,
    src: &Source<'_>,
) -> Result<Vec<(String, Vec<Value>)>, SpecError> {
    let mut grid = Vec::new();
    for (k, v) in raw {
        let key = yaml_key(k).map_err(|m| src.invalid(&["grid"], "grid", m))?;
        let gk = format!("grid.{key}");
        let here = ["grid", key.as_str()];
        check_dotted_key(&key).map_err(|m| src.invalid(&here, &gk, m))?;
        let values = match v {
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .map(yaml_to_json)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| src.invalid(&here, &gk, m))?,
            _ => {
                return Err(src.invalid(
                    &here,
                    &gk,
                    "expected a list of values, e.g. [1.0e-5, 3.0e-5]".into(),
                ))
            }
        };
        if values.is_empty() {
            return Err(src.invalid(&here, &gk, "the list of values is empty".into()));
        }
        if has_duplicates(&values) {
            return Err(src.invalid(&here, &gk, "a value is listed twice".into()));
        }
        grid.push((key, values));
    }
    Ok(grid)
}

/// `ablations:`: unique names other than `baseline`, each setting at least one dotted key
/// that the grid does not vary.
fn parse_ablations(
    raw: &[RawAblation],
    grid: &[(String, Vec<Value>)],
    src: &Source<'_>,
) -> Result<Vec<Ablation>, SpecError> {
    let mut names = BTreeSet::new();
    let mut ablations = Vec::new();
    for a in raw {
        let name_key = format!("name: {}", a.name);
        let here = ["ablations", name_key.as_str()];
        check_name("ablations.name", &a.name)
            .map_err(|m| src.invalid(&here, "ablations.name", m))?;
        if a.name == BASELINE {
            return Err(src.invalid(
                &here,
                "ablations.name",
                "`baseline` is the name of the unmodified base config; choose another".into(),
            ));
        }
        if !names.insert(a.name.clone()) {
            return Err(src.invalid(
                &["ablations", &name_key, &name_key],
                "ablations.name",
                format!("two ablations are named {:?}; names must be unique", a.name),
            ));
        }
        if a.set.is_empty() {
            return Err(src.invalid(
                &here,
                "ablations.set",
                format!("ablation {:?} sets nothing", a.name),
            ));
        }
        let mut set = Vec::new();
        for (k, v) in &a.set {
            let key = yaml_key(k).map_err(|m| src.invalid(&here, "ablations.set", m))?;
            let loc = [here[0], here[1], key.as_str()];
            let sk = format!("ablations.{}.set.{key}", a.name);
            check_dotted_key(&key).map_err(|m| src.invalid(&loc, &sk, m))?;
            if grid.iter().any(|(g, _)| *g == key) {
                return Err(src.invalid(
                    &loc,
                    &sk,
                    format!("{key} is also a grid key; an ablation cannot override the grid"),
                ));
            }
            let value = yaml_to_json(v).map_err(|m| src.invalid(&loc, &sk, m))?;
            set.push((key.clone(), value));
        }
        ablations.push(Ablation {
            name: a.name.clone(),
            set,
        });
    }
    Ok(ablations)
}

/// `search:`: the block's own checks, then what it means for the rest of the study. A
/// search's suggestions are its variants, so it has no grid or ablations; its claims would
/// have nothing to compare; pruning needs periodic evaluations and one seed per
/// suggestion.
fn check_search(
    search: &Search,
    raw: &RawStudy,
    seeds: &Seeds,
    src: &Source<'_>,
) -> Result<(), SpecError> {
    search.check().map_err(|(key, message)| {
        let needles: Vec<&str> = std::iter::once("search")
            .chain(key.split('.').take(2))
            .collect();
        src.invalid(&needles, &format!("search.{key}"), message)
    })?;
    if let Some(prune) = &search.prune {
        if !raw.claims.is_empty() {
            return Err(src.invalid(
                &["search", "prune"],
                "search.prune",
                "a study with claims cannot prune: pruning stops the trials that look worse \
                 early, so the arm that is losing is cut short and a claim's comparison is \
                 biased. Tune with pruning in one study, then check claims (without \
                 search:) in another with the values it found in base"
                    .into(),
            ));
        }
        if seeds.initial() != 1 || seeds.is_sequential() {
            return Err(src.invalid(
                &["seeds"],
                "seeds",
                "prune: compares single runs at each rung, so each suggestion runs one seed \
                 (seeds: [1]); without prune:, a suggestion's objective is its mean over \
                 the seeds"
                    .into(),
            ));
        }
        let is_program = raw.base.command.is_some();
        if !is_program {
            match raw.base.train.eval_steps {
                None => {
                    return Err(src.invalid(
                        &["search", "prune"],
                        "search.prune",
                        "pruning compares periodic evaluations: set base.train.eval_steps \
                         (at most prune.min_steps)"
                            .into(),
                    ))
                }
                Some(e) if e as u64 > prune.min_steps => {
                    return Err(src.invalid(
                        &["search", "prune", "min_steps"],
                        "search.prune.min_steps",
                        format!(
                            "{}: below base.train.eval_steps ({e}), so no evaluation exists at \
                             the first rung",
                            prune.min_steps
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if !raw.claims.is_empty() {
        return Err(src.invalid(
            &["claims"],
            "claims",
            "claims compare an ablation with the baseline, and a search study has \
             suggestions instead; check claims in a study without search: (with the values \
             the search found in base)"
                .into(),
        ));
    }
    if !raw.grid.is_empty() || !raw.ablations.is_empty() {
        let key = if raw.grid.is_empty() {
            "ablations"
        } else {
            "grid"
        };
        return Err(src.invalid(
            &[key],
            key,
            format!(
                "a search study's variants are its suggestions: put fixed values in base and \
                 the keys to vary under search.space, not {key}:"
            ),
        ));
    }
    if seeds.is_sequential() {
        return Err(src.invalid(
            &["seeds"],
            "seeds",
            "sequential seeds serve claims; a search runs a fixed list of seeds per \
             suggestion (e.g. seeds: [1])"
                .into(),
        ));
    }
    for (key, _) in &search.space {
        let here = ["search", "space", key.as_str()];
        check_dotted_key(key).map_err(|m| src.invalid(&here, &format!("search.space.{key}"), m))?;
    }
    Ok(())
}

/// `claims:`: each names an ablation (not the baseline); margins only on `same` claims, and
/// required there for metrics other than EM/F1.
fn check_claims(
    claims: &[Claim],
    names: &BTreeSet<String>,
    src: &Source<'_>,
) -> Result<(), SpecError> {
    for c in claims {
        if c.variant == BASELINE {
            return Err(src.invalid(
                &["claims", BASELINE],
                "claims.variant",
                "a claim compares a variant with the baseline; it cannot name the baseline".into(),
            ));
        }
        if !names.contains(&c.variant) {
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = crate::suggest::nearest(&c.variant, &known)
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            return Err(src.invalid(
                &["claims", &c.variant],
                "claims.variant",
                format!(
                    "unknown variant {:?}{hint}; claims name an ablation: {}",
                    c.variant,
                    known.join(", ")
                ),
            ));
        }
        if c.expect == Expect::Same && c.margin.is_none() && !c.metric.is_score() {
            return Err(src.invalid(
                &["claims", &c.variant],
                "claims.margin",
                format!(
                    "a `same` claim on {} needs a margin in its own unit (the default of 1 point is for EM/F1)",
                    c.metric.label()
                ),
            ));
        }
        if let Some(m) = c.margin {
            if !(m.is_finite() && m >= 0.0) || c.expect != Expect::Same {
                return Err(src.invalid(
                    &["claims", &c.variant, "margin"],
                    "claims.margin",
                    "margin is a non-negative number (points for EM/F1), only for expect: same"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// Replaces a validation error's location with a more precise one.
fn relocate(e: SpecError, path: &str) -> SpecError {
    match e {
        SpecError::Invalid { key, message, .. } => SpecError::Invalid {
            path: path.into(),
            key,
            message,
        },
        other => other,
    }
}

/// Names become folder names and report ids: keep them to a safe alphabet.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?}: expected 1-64 characters from A-Z a-z 0-9 - _ . ="
        ))
    }
}

fn yaml_key(k: &serde_yaml::Value) -> Result<String, String> {
    match k {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "expected a dotted key such as train.learning_rate, found {other:?}"
        )),
    }
}

fn yaml_to_json(v: &serde_yaml::Value) -> Result<Value, String> {
    let json = serde_json::to_value(v).map_err(|e| format!("value {v:?}: {e}"))?;
    match json {
        Value::Null => Err("null is not a value a key can be set to".into()),
        Value::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => {
            Err("expected a finite number".into())
        }
        other => Ok(other),
    }
}

fn has_duplicates(values: &[Value]) -> bool {
    values
        .iter()
        .enumerate()
        .any(|(i, a)| values[..i].iter().any(|b| b == a))
}

/// Is `key` (`section.field`, or `model_config.<any HF key>`) a key of the trial schema?
pub fn check_dotted_key(key: &str) -> Result<(), String> {
    let train_keys = crate::trial::train_keys();
    let all: Vec<String> = MODEL_KEYS
        .iter()
        .map(|k| format!("model.{k}"))
        .chain(DATA_KEYS.iter().map(|k| format!("data.{k}")))
        .chain(train_keys.iter().map(|k| format!("train.{k}")))
        .collect();
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    let known = match section {
        "model_config" => !field.is_empty() && !field.contains('.'),
        "model" | "data" | "train" => all.iter().any(|k| k == key),
        // Program trials: the whole argv, file lists and format, and any params key.
        "command" | "code" | "results" => field.is_empty(),
        "params" => !field.is_empty() && field.split('.').all(|p| !p.is_empty()),
        _ => false,
    };
    if key == "train.seed" {
        return Err("train.seed comes from the study's seeds list; vary seeds there".into());
    }
    if known {
        return Ok(());
    }
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let hint = crate::suggest::nearest(key, &names)
        .map(|n| format!("; did you mean {n}?"))
        .unwrap_or_default();
    Err(format!(
        "{key} is not a key of the trial schema (model.*, model_config.<HF config key>, data.train|eval, train.*, and for program trials command, code, results, params.<key>){hint}"
    ))
}

/// Sets `a.b.c` in a JSON object, creating objects on the way.
fn set_dotted(doc: &mut Value, key: &str, value: Value) {
    let mut cur = doc;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return;
        }
        cur = map
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}
