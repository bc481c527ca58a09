//! HF checkpoint files in and out: `model.safetensors`, sharded safetensors with
//! `model.safetensors.index.json`, or `pytorch_model.bin` (zip or legacy pickle, read with
//! burn-store). Tensors are read into f32 host memory keyed by their HF names, then handed
//! out by [`WeightSource`], which tracks what was used so the load can report exactly which
//! keys were missing (freshly initialised), unused or deliberately ignored.
//!
//! Key variants of real checkpoints: with or without the `bert.`/`albert.` prefix (a bare
//! `BertModel` as sentence-transformers saves it has none), and TF-era `LayerNorm.gamma/beta`.
//! Pre-training heads (`cls.*`, `predictions.*`, `sop_classifier.*`) and the pooler are
//! ignored: the QA model has no use for them. Buffers HF re-creates (`position_ids`, saved
//! as int64 by transformers 3.x–4.30) are skipped before any dtype check, as HF skips them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{ModelError, Result};
use crate::hf_names::{HfName, Scope};

/// One host tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// What a load did with the checkpoint's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub source: String,
    pub loaded: usize,
    /// Model parameters absent from the checkpoint, initialised like HF does.
    pub initialised: Vec<String>,
    /// Checkpoint keys the model does not use (not counting the ignored ones).
    pub unused: Vec<String>,
    /// Pre-training heads, pooler and buffers, skipped on purpose.
    pub ignored: Vec<String>,
}

/// The tensors of a checkpoint, by HF name, and the buffers skipped while reading them.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// The file read (or the shard index).
    pub path: PathBuf,
    pub tensors: HashMap<String, HostTensor>,
    /// Buffers HF re-creates instead of loading (`embeddings.position_ids`, …), skipped
    /// before any dtype conversion: transformers 3.x–4.30 saved them as int64.
    pub skipped_buffers: Vec<String>,
    /// Other tensors that are not floats (name → dtype): an error only if the model needs
    /// one of them, else reported as unused.
    pub not_float: BTreeMap<String, String>,
}

/// Reads every tensor of a model directory (or a single weights file).
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let bin = dir.join("pytorch_model.bin");
    let mut checkpoint = Checkpoint::default();
    if single.is_file() {
        read_safetensors_into(&single, &mut checkpoint)?;
        checkpoint.path = single;
    } else if index.is_file() {
        read_sharded(dir, &index, &mut checkpoint)?;
        checkpoint.path = index;
    } else if bin.is_file() {
        read_pytorch(&bin, &mut checkpoint)?;
        checkpoint.path = bin;
    } else {
        return Err(ModelError::Invalid(format!(
            "{}: no weights found; expected model.safetensors, model.safetensors.index.json or pytorch_model.bin",
            dir.display()
        )));
    }
    Ok(checkpoint)
}

/// Buffers that HF modules register and re-create rather than load: BERT/ALBERT's
/// `embeddings.position_ids` (persistent, int64, until transformers 4.31) and
/// `embeddings.token_type_ids` (a zero buffer for calls without token types).
pub fn is_hf_buffer(key: &str) -> bool {
    key.ends_with("embeddings.position_ids") || key.ends_with("embeddings.token_type_ids")
}

fn weights_err(path: &Path, key: &str, message: impl Into<String>) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: message.into(),
    }
}

/// The values of a float tensor as f32; `None` for other dtypes.
fn to_f32(view: &TensorView) -> Option<Vec<f32>> {
    let b = view.data();
    let out = match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    };
    Some(out)
}

/// Reads a safetensors file's tensors as f32 (HF buffers skipped, see [`is_hf_buffer`]).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, HostTensor>> {
    let mut checkpoint = Checkpoint::default();
    read_safetensors_into(path, &mut checkpoint)?;
    Ok(checkpoint.tensors)
}

fn read_safetensors_into(path: &Path, out: &mut Checkpoint) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| weights_err(path, "", format!("not a valid safetensors file: {e}")))?;
    for (name, view) in st.tensors() {
        if is_hf_buffer(&name) {
            out.skipped_buffers.push(name);
            continue;
        }
        let Some(data) = to_f32(&view) else {
            out.not_float.insert(name, format!("{:?}", view.dtype()));
            continue;
        };
        out.tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(())
}

fn read_sharded(dir: &Path, index: &Path, out: &mut Checkpoint) -> Result<()> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: index.to_path_buf(),
        message: format!("not JSON: {e}"),
    })?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::Config {
            path: index.to_path_buf(),
            message: "key weight_map is missing (expected {tensor name: shard file})".into(),
        })?;
    let mut shards = BTreeSet::new();
    for (tensor, shard) in map {
        let shard = shard.as_str().ok_or_else(|| ModelError::Config {
            path: index.to_path_buf(),
            message: format!("weight_map.{tensor}: expected a shard file name, found {shard}"),
        })?;
        // A shard is a file beside the index, never a path elsewhere.
        if shard.is_empty() || shard.contains('/') || shard.contains('\\') || shard == ".." {
            return Err(ModelError::Config {
                path: index.to_path_buf(),
                message: format!(
                    "weight_map.{tensor}: {shard:?} is not a file name in this directory"
                ),
            });
        }
        shards.insert(shard);
    }
    for shard in shards {
        read_safetensors_into(&dir.join(shard), out).map_err(|e| ModelError::Config {
            path: index.to_path_buf(),
            message: format!("shard {shard}: {e}"),
        })?;
    }
    Ok(())
}

fn read_pytorch(path: &Path, out: &mut Checkpoint) -> Result<()> {
    let reader = burn_store::pytorch::PytorchReader::new(path)
        .map_err(|e| weights_err(path, "", format!("cannot read PyTorch checkpoint: {e}")))?;
    for (name, snapshot) in reader.into_tensors() {
        if is_hf_buffer(&name) {
            out.skipped_buffers.push(name);
            continue;
        }
        let data = snapshot
            .to_data()
            .map_err(|e| weights_err(path, &name, format!("cannot read tensor: {e:?}")))?;
        if !data.dtype.is_float() {
            out.not_float.insert(name, format!("{:?}", data.dtype));
            continue;
        }
        let shape = data.shape.clone();
        let data = data.convert::<f32>();
        let values: Vec<f32> = data
            .to_vec()
            .map_err(|e| weights_err(path, &name, format!("cannot convert to f32: {e:?}")))?;
        out.tensors.insert(
            name,
            HostTensor {
                shape: shape.to_vec(),
                data: values,
            },
        );
    }
    Ok(())
}

fn is_ignored(key: &str) -> bool {
    key.starts_with("cls.")
        || key.starts_with("predictions.")
        || key.starts_with("sop_classifier.")
        || key.starts_with("pooler.")
        || key.contains(".pooler.")
        || is_hf_buffer(key)
}

/// Hands out checkpoint tensors by HF name and remembers what was taken.
#[derive(Debug)]
pub struct WeightSource {
    path: PathBuf,
    tensors: HashMap<String, HostTensor>,
    prefix: String,
    /// True when the checkpoint's base-model keys carry the prefix.
    prefixed: bool,
    taken: BTreeSet<String>,
    initialised: Vec<String>,
    skipped_buffers: Vec<String>,
    not_float: BTreeMap<String, String>,
}

impl WeightSource {
    /// `prefix` is the base model's (`bert`/`albert`).
    pub fn new(path: PathBuf, tensors: HashMap<String, HostTensor>, prefix: &str) -> Self {
        // Normalise TF-era LayerNorm names once.
        let tensors: HashMap<String, HostTensor> = tensors
            .into_iter()
            .map(|(k, v)| {
                let k = if k.ends_with(".gamma") && k.to_lowercase().contains("norm") {
                    format!("{}.weight", &k[..k.len() - 6])
                } else if k.ends_with(".beta") && k.to_lowercase().contains("norm") {
                    format!("{}.bias", &k[..k.len() - 5])
                } else {
                    k
                };
                (k, v)
            })
            .collect();
        let prefixed = tensors.keys().any(|k| k.starts_with(&format!("{prefix}.")));
        Self {
            path,
            tensors,
            prefix: prefix.to_string(),
            prefixed,
            taken: BTreeSet::new(),
            initialised: Vec::new(),
            skipped_buffers: Vec::new(),
            not_float: BTreeMap::new(),
        }
    }

    /// A source over a whole checkpoint; its skipped buffers are reported as ignored.
    pub fn from_checkpoint(checkpoint: Checkpoint, prefix: &str) -> Self {
        let mut source = Self::new(checkpoint.path, checkpoint.tensors, prefix);
        source.skipped_buffers = checkpoint.skipped_buffers;
        source.not_float = checkpoint.not_float;
        source
    }

    /// A source with no tensors: every parameter is initialised (models from scratch).
    pub fn empty(prefix: &str) -> Self {
        Self::new(PathBuf::from("(random init)"), HashMap::new(), prefix)
    }

    /// The checkpoint key of parameter `param` (`weight`, `bias`) of `module`: prefixed
    /// with the base model's name when the module is in the base model and the checkpoint
    /// is a `…ForQuestionAnswering` (or pretraining) one.
    fn key(&self, module: &HfName, param: &str) -> String {
        match module.scope {
            Scope::Base if self.prefixed => format!("{}.{}.{param}", self.prefix, module.path),
            _ => format!("{}.{param}", module.path),
        }
    }

    /// Takes parameter `param` of `module` with the given HF shape, or `None` (recorded as
    /// initialised) when the checkpoint lacks it.
    pub fn take(
        &mut self,
        module: &HfName,
        param: &str,
        shape: &[usize],
    ) -> Result<Option<Vec<f32>>> {
        let key = self.key(module, param);
        if let Some(dtype) = self.not_float.get(&key) {
            return Err(weights_err(
                &self.path,
                &key,
                format!("dtype {dtype} is not a float type; this parameter needs floats"),
            ));
        }
        match self.tensors.get(&key) {
            Some(t) => {
                if t.shape != shape {
                    return Err(weights_err(
                        &self.path,
                        &key,
                        format!(
                            "shape {:?} does not match the config, which implies {shape:?}",
                            t.shape
                        ),
                    ));
                }
                self.taken.insert(key);
                Ok(Some(t.data.clone()))
            }
            None => {
                self.initialised.push(key);
                Ok(None)
            }
        }
    }

    pub fn report(&self) -> LoadReport {
        let mut unused = Vec::new();
        let mut ignored = Vec::new();
        let rest: BTreeMap<&String, ()> = self
            .tensors
            .keys()
            .filter(|k| !self.taken.contains(*k))
            .map(|k| (k, ()))
            .collect();
        for k in rest.keys() {
            if is_ignored(k) {
                ignored.push(k.to_string());
            } else {
                unused.push(k.to_string());
            }
        }
        unused.extend(self.not_float.keys().cloned());
        unused.sort();
        ignored.extend(self.skipped_buffers.iter().cloned());
        ignored.sort();
        LoadReport {
            source: self.path.display().to_string(),
            loaded: self.taken.len(),
            initialised: self.initialised.clone(),
            unused,
            ignored,
        }
    }
}

/// Writes `tensors` (HF names, PyTorch layouts) as a safetensors file, atomically.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, HostTensor>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, s)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| weights_err(path, k, format!("cannot serialise: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| weights_err(path, "", format!("cannot serialise: {e}")))?;
    Ok(spec::atomic::write_file(path, &out)?)
}
