use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Context, Outcome, StageError};

/// A kind of stage, as the engine sees it.
pub trait Kind: Send + Sync {
    /// The name pipeline files use, e.g. `Command`.
    fn name(&self) -> &'static str;
    /// Part of every key: bumped when the kind's semantics change.
    fn version(&self) -> u32;
    /// The names of the fields its parameters accept (a `ForEach` variable the stage
    /// never mentions is set as the field of the same name, if there is one).
    fn fields(&self) -> &'static [&'static str];
    /// Checks the parameters as written and says what the stage reads.
    fn declare(&self, params: &ronspan::Value) -> Result<Declaration, ronspan::Error>;
    /// Runs the stage on the canonical parameters [`Kind::declare`] returned.
    fn run(&self, params: &serde_json::Value, ctx: &Context) -> Result<Outcome, StageError>;
    /// Writes canonical parameters back as the stage a pipeline file would hold, e.g.
    /// `Train(data: "cifar10_train", …)`: declared again, it gives the same parameters.
    fn render(&self, params: &serde_json::Value) -> Result<String, RenderError>;
    /// What the parameters accept, with their doc comments (`pipe explain`).
    fn explain(&self) -> explain::Shape;
}

/// Why canonical parameters could not be written back as RON.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the parameters do not fit {kind}: {source}")]
    Params {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("the parameters cannot be written as RON: {0}")]
    Ron(#[from] ron::Error),
}

/// What a stage's parameters say, once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// Canonical parameters: what the kind's typed parameters serialize to, so that
    /// formatting, comments and the order of fields change nothing.
    pub params: serde_json::Value,
    pub stages: Vec<Reference>,
    pub files: Vec<FileInput>,
    pub gpus: GpuNeed,
}

/// The GPUs a stage asks the run for. Not part of the key: which GPU (or whether one)
/// a stage gets is the run's business; a kind that computes differently on a GPU says
/// so in its parameters (a `device` field).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GpuNeed {
    /// None: the stage runs on the CPU.
    #[default]
    None,
    /// Exactly this many: the run must have them, and the stage waits until they are free.
    Exactly(u32),
    /// This many when the run has GPUs (and the stage waits for them), none when it has
    /// none: the stage then runs on the CPU. What `device: Auto` asks for.
    IfAny(u32),
}

impl GpuNeed {
    /// How many of a run's `total` GPU slots the stage takes, or the shortfall as
    /// `Err(needed)` when it needs more than the run has.
    pub fn slots(self, total: usize) -> Result<usize, usize> {
        match self {
            GpuNeed::None => Ok(0),
            GpuNeed::Exactly(n) if n as usize > total => Err(n as usize),
            GpuNeed::Exactly(n) => Ok(n as usize),
            GpuNeed::IfAny(_) if total == 0 => Ok(0),
            GpuNeed::IfAny(n) => Ok((n as usize).min(total)),
        }
    }

    /// The most GPUs the stage would use.
    pub fn count(self) -> u32 {
        match self {
            GpuNeed::None => 0,
            GpuNeed::Exactly(n) | GpuNeed::IfAny(n) => n,
        }
    }
}

/// An upstream stage the stage reads, under the role name the stage uses for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub role: String,
    /// A stage name, a `ForEach` group name, or a pattern with `*`.
    pub target: String,
    /// Where the reference is written, as a path of fields (for error messages).
    pub at: Vec<String>,
}

impl Reference {
    /// The stage named by the field `role` of the parameters, read under that role.
    pub fn field(role: &str, target: &str) -> Reference {
        Reference {
            role: role.into(),
            target: target.into(),
            at: vec![role.into()],
        }
    }
}

/// An external file or folder the stage reads; its content is part of the key.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInput {
    pub role: String,
    /// As written: relative paths are relative to the pipeline file's folder.
    pub path: PathBuf,
    pub at: Vec<String>,
}

/// A parameter that parsed but makes no sense, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub at: Vec<String>,
    pub help: Option<String>,
}

impl Invalid {
    pub fn new(message: impl Into<String>, at: &[&str]) -> Invalid {
        Invalid {
            message: message.into(),
            at: at.iter().map(|s| s.to_string()).collect(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Invalid {
        self.help = Some(help.into());
        self
    }
}

/// The inputs and needs of a stage, as a [`TypedKind`] states them.
#[derive(Debug, Default)]
pub struct Needs {
    pub stages: Vec<Reference>,
    pub files: Vec<FileInput>,
    pub gpus: GpuNeed,
}

/// A kind with typed parameters; [`Typed`] makes it a [`Kind`].
pub trait TypedKind: Send + Sync + 'static {
    const NAME: &'static str;
    const VERSION: u32;
    /// Parameters, deserialized with unknown fields rejected; their doc comments are
    /// what `pipe explain` shows.
    type Params: Serialize + DeserializeOwned + explain::Explain;
    /// What its work fails with: its own error type, converted at the contract.
    type Error: Into<StageError>;

    /// Says what the stage reads, rejecting parameters that parse but are wrong.
    fn declare(params: &Self::Params) -> Result<Needs, Invalid>;
    fn run(params: Self::Params, ctx: &Context) -> Result<Outcome, Self::Error>;
}

/// Adapts a [`TypedKind`] to the object-safe [`Kind`].
pub struct Typed<K>(PhantomData<K>);

impl<K> Default for Typed<K> {
    fn default() -> Self {
        Typed(PhantomData)
    }
}

impl<K: TypedKind> Kind for Typed<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn version(&self) -> u32 {
        K::VERSION
    }

    fn fields(&self) -> &'static [&'static str] {
        struct_fields::<K::Params>()
    }

    fn declare(&self, value: &ronspan::Value) -> Result<Declaration, ronspan::Error> {
        let params: K::Params = ronspan::from_value(value)?;
        let needs = K::declare(&params).map_err(|invalid| {
            let at: Vec<&str> = invalid.at.iter().map(String::as_str).collect();
            let span = value.get_path(&at).map_or(value.name_span(), |v| v.span);
            let error = ronspan::Error::new(invalid.message, span);
            match invalid.help {
                Some(help) => error.with_help(help),
                None => error,
            }
        })?;
        let params = serde_json::to_value(&params).map_err(|e| {
            ronspan::Error::new(
                format!("parameters cannot be canonicalized: {e}"),
                value.span,
            )
        })?;
        Ok(Declaration {
            params,
            stages: needs.stages,
            files: needs.files,
            gpus: needs.gpus,
        })
    }

    fn run(&self, params: &serde_json::Value, ctx: &Context) -> Result<Outcome, StageError> {
        let params = serde_json::from_value(params.clone()).map_err(|e| {
            StageError::caused(
                format!("stored parameters do not fit {} v{}", K::NAME, K::VERSION),
                e,
            )
        })?;
        K::run(params, ctx).map_err(Into::into)
    }

    fn explain(&self) -> explain::Shape {
        <K::Params as explain::Explain>::shape()
    }

    fn render(&self, params: &serde_json::Value) -> Result<String, RenderError> {
        let params: K::Params =
            serde_json::from_value(params.clone()).map_err(|source| RenderError::Params {
                kind: K::NAME,
                source,
            })?;
        // The kind's name, not the Rust type's, opens the stage; nested structs are
        // anonymous in pipeline files, as `(every: 2000, …)`; strings read as written,
        // raw (`r#"…"#`) where they hold a quote or a backslash.
        let config = ron::ser::PrettyConfig::new()
            .indentor("    ")
            .struct_names(false)
            .escape_strings(false);
        Ok(format!(
            "{}{}",
            K::NAME,
            ron::ser::to_string_pretty(&params, config)?
        ))
    }
}

/// The kinds a build knows, looked up by name.
pub struct Registry {
    kinds: Vec<Box<dyn Kind>>,
}

impl Registry {
    pub fn new(kinds: Vec<Box<dyn Kind>>) -> Registry {
        Registry { kinds }
    }

    pub fn get(&self, name: &str) -> Option<&dyn Kind> {
        self.kinds
            .iter()
            .find(|k| k.name() == name)
            .map(|k| k.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.name())
    }
}

/// The field names serde knows for a struct type, read from what its `Deserialize`
/// implementation asks for.
fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Fields(&'static [&'static str]);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("introspection")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Stop {
            Stop
        }
    }

    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn struct_fields_are_introspected() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct P {
            a: u32,
            #[serde(default)]
            b: String,
        }
        assert_eq!(super::struct_fields::<P>(), ["a", "b"]);
    }

    /// The rule of the crate's documentation, in action: a field added with a default
    /// and skipped at it leaves the canonical parameters of existing stages alone.
    #[test]
    fn a_defaulted_skipped_field_leaves_canonical_params_alone() {
        use crate::{Context, Invalid, Kind, Needs, Outcome, StageError, Typed, TypedKind};

        #[derive(serde::Serialize, serde::Deserialize, explain::Explain)]
        #[serde(deny_unknown_fields)]
        struct Before {
            a: u32,
        }

        #[derive(serde::Serialize, serde::Deserialize, explain::Explain)]
        #[serde(deny_unknown_fields)]
        struct After {
            a: u32,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            b: Option<u32>,
        }

        struct K<P>(std::marker::PhantomData<P>);
        impl<
            P: serde::Serialize
                + serde::de::DeserializeOwned
                + explain::Explain
                + Send
                + Sync
                + 'static,
        > TypedKind for K<P>
        {
            const NAME: &'static str = "K";
            const VERSION: u32 = 1;
            type Params = P;
            type Error = StageError;
            fn declare(_: &P) -> Result<Needs, Invalid> {
                Ok(Needs::default())
            }
            fn run(_: P, _: &Context) -> Result<Outcome, StageError> {
                Ok(Outcome::default())
            }
        }

        let declare = |kind: &dyn Kind, text: &str| {
            let value = ronspan::parse(ronspan::FileId(0), text).unwrap();
            kind.declare(&value).unwrap().params
        };
        let before = Typed::<K<Before>>::default();
        let after = Typed::<K<After>>::default();
        assert_eq!(declare(&before, "K(a: 1)"), declare(&after, "K(a: 1)"));
        assert_ne!(
            declare(&after, "K(a: 1)"),
            declare(&after, "K(a: 1, b: Some(2))")
        );
    }

    #[test]
    fn gpu_needs_against_the_runs_slots() {
        use super::GpuNeed;
        assert_eq!(GpuNeed::None.slots(4), Ok(0));
        assert_eq!(GpuNeed::Exactly(2).slots(4), Ok(2));
        assert_eq!(GpuNeed::Exactly(2).slots(1), Err(2));
        assert_eq!(GpuNeed::Exactly(1).slots(0), Err(1));
        assert_eq!(GpuNeed::IfAny(1).slots(0), Ok(0));
        assert_eq!(GpuNeed::IfAny(1).slots(3), Ok(1));
        assert_eq!(GpuNeed::IfAny(4).slots(2), Ok(2));
    }
}
