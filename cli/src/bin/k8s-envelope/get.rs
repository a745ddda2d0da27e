//! `k8s-envelope get`: one value of a store, decrypted and decoded.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use k8s_envelope::object::{DecodeOptions, Decoded};
use k8s_envelope::store::printable;

use crate::configuration;
use crate::failure::Failure;
use crate::shown;
use crate::store_args::{self, StoreArgs};

#[derive(Args, Debug)]
#[command(group = store_args::required_store())]
pub struct GetArgs {
    /// The EncryptionConfiguration the kube-apiservers use (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// The full etcd key, as `scan` lists it (/registry/secrets/NS/NAME).
    #[arg(id = "object_key", value_name = "KEY")]
    key: String,
    /// Take the value to be of this group-resource instead of telling it
    /// from its key.
    #[arg(long)]
    resource: Option<String>,
    /// Output format; `raw` is the decrypted bytes exactly as stored.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Show a Secret's UTF-8 data values as text, under stringData (binary
    /// values stay base64 under data), so the output applies back to the
    /// same bytes.
    #[arg(long)]
    decode_data: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// YAML, keys sorted, as `kubectl get -o yaml`.
    Yaml,
    /// JSON as the API serves it.
    Json,
    /// The decrypted bytes.
    Raw,
}

/// Prints one value; how it was decrypted goes to stderr.
pub fn run(args: &GetArgs) -> Result<(), Failure> {
    let runtime = store_args::runtime()?;
    let transformers = configuration::load_and_build(&args.config, &runtime)?;
    let opened = args.store.open(&runtime)?;
    let key = args.key.as_bytes();
    let entry = runtime
        .block_on(opened.store.get(key))
        .map_err(|e| Failure::transform(e.to_string()))?
        .ok_or_else(|| {
            Failure::transform(format!(
                "{}: no such key in {}",
                printable(key),
                opened.store.describe()
            ))
        })?;
    let mut options = DecodeOptions::default();
    if args.decode_data {
        options = options.with_decoded_data();
    }
    let layout = args.store.layout(args.resource.as_deref());
    let shown = runtime
        .block_on(shown::show(&transformers, &layout, &entry, &options))
        .map_err(Failure::transform)?;
    eprintln!(
        "k8s-envelope: {}: {}",
        printable(key),
        shown.how(entry.revision)
    );
    if args.output == Format::Raw {
        return std::io::stdout()
            .write_all(&shown.plaintext)
            .map_err(|e| Failure::transform(format!("writing stdout: {e}")));
    }
    let out = match (args.output, &shown.decoded) {
        (Format::Json, Decoded::Object(object)) => format!("{}\n", object.to_json()).into_bytes(),
        (Format::Yaml, Decoded::Object(object)) => object.to_yaml().into_bytes(),
        (_, Decoded::Cbor) => {
            return Err(Failure::transform(format!(
                "{}: a CBOR object (the apiserver's CBORServingAndStorage feature): not decoded; --output raw prints its bytes",
                printable(key)
            )))
        }
        (_, _) => {
            return Err(Failure::transform(format!(
                "{}: not a Kubernetes object ({} bytes); --output raw prints them",
                printable(key),
                shown.plaintext.len()
            )))
        }
    };
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| Failure::transform(format!("writing stdout: {e}")))
}
