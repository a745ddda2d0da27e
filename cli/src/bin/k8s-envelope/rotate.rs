//! `k8s-envelope rotate plan|add-key|promote|retire`: the rotation steps on
//! a configuration file, each written to a new file.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use k8s_envelope::config::{EncryptionConfiguration, GoDuration};
use k8s_envelope::rotation::{self, Change, Member, ProviderId, RotationError, StepKind};
use k8s_envelope::store::{KeyLayout, DEFAULT_ETCD_PREFIX};

use crate::configuration::{self, StatusLoops};
use crate::failure::Failure;
use crate::store_args::{self, StoreArgs};

#[derive(Subcommand, Debug)]
pub enum RotateCommand {
    /// Print the steps of a rotation, the command for each, and what to do
    /// between them.
    Plan(PlanArgs),
    /// Step 1: add a fresh key to the writing provider (or a new provider)
    /// in second place, so every server can read it before any writes with it.
    AddKey(AddArgs),
    /// Step 2: make a key or provider that every server already reads the writer.
    Promote(MemberArgs),
    /// Step 4: remove a key or provider that no stored value uses any more.
    Retire(RetireArgs),
}

#[derive(Args, Debug)]
struct Rule {
    /// The EncryptionConfiguration (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    /// Which resource rule: the one that reads and writes this
    /// group-resource (`secrets`, `deployments.apps`).
    #[arg(long, default_value = "secrets")]
    resource: String,
}

#[derive(Args, Debug)]
struct NewMember {
    /// What to add: a key to the writing provider (default), or a new
    /// provider: aesgcm, aescbc, secretbox, identity, or kms:NAME (KMS v2).
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
    /// The new key's name (default: key<N+1>).
    #[arg(long)]
    name: Option<String>,
    /// For kms:NAME: the plugin's endpoint (unix:///path/to.sock).
    #[arg(long, value_name = "ENDPOINT")]
    kms_endpoint: Option<String>,
    /// For kms:NAME: the timeout of every plugin call.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    kms_timeout: String,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    rule: Rule,
    #[command(flatten)]
    new: NewMember,
    /// The etcd URL(s) to put in the printed commands.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    etcd: Vec<String>,
    /// The CA certificate to put in the printed commands.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The client certificate to put in the printed commands.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The client key to put in the printed commands.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// A dump to put in the printed commands instead of etcd.
    #[arg(long, value_name = "FILE", conflicts_with = "etcd")]
    dump: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    rule: Rule,
    /// Where to write the new configuration.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    new: NewMember,
}

#[derive(Args, Debug)]
pub struct MemberArgs {
    #[command(flatten)]
    rule: Rule,
    /// Where to write the new configuration.
    #[arg(long)]
    out: PathBuf,
    /// The key's name (a key of a static-key provider).
    #[arg(long, required_unless_present = "provider")]
    name: Option<String>,
    /// The provider (aesgcm, aescbc, secretbox, identity, kms:NAME); with
    /// --name, the provider that holds the key.
    #[arg(long, value_name = "PROVIDER")]
    provider: Option<String>,
}

#[derive(Args, Debug)]
pub struct RetireArgs {
    #[command(flatten)]
    member: MemberArgs,
    /// The store to scan (under --prefix) for values still written by what
    /// is retired: the retirement is refused while there are any.
    #[command(flatten)]
    store: StoreArgs,
    /// Retire without a scan, or even though values still use it (they
    /// become unreadable).
    #[arg(long)]
    force: bool,
}

/// Runs one rotation command.
pub fn run(command: &RotateCommand) -> Result<(), Failure> {
    match command {
        RotateCommand::Plan(args) => plan(args),
        RotateCommand::AddKey(args) => add(args),
        RotateCommand::Promote(args) => promote(args),
        RotateCommand::Retire(args) => retire(args),
    }
}

fn refused(e: RotationError) -> Failure {
    Failure::usage(format!("refused: {e}"))
}

/// The configuration and the index of the rule for `--resource`.
fn open(rule: &Rule) -> Result<(EncryptionConfiguration, usize), Failure> {
    let config = configuration::load(&rule.config)?;
    let index = rotation::rule_for_resource(&config, &rule.resource).ok_or_else(|| {
        refused(RotationError::NoRule {
            resource: rule.resource.clone(),
        })
    })?;
    Ok((config, index))
}

/// What `--provider`/`--name` add to rule `rule`.
fn change(
    config: &EncryptionConfiguration,
    rule: usize,
    new: &NewMember,
) -> Result<Change, Failure> {
    let (writer, _) = rotation::writer(config, rule).map_err(refused)?;
    let provider = match &new.provider {
        Some(p) => p
            .parse::<ProviderId>()
            .map_err(|e| Failure::usage(e.to_string()))?,
        None => writer.clone(),
    };
    if provider == writer && provider.has_keys() {
        let keys = config.resources[rule].providers[0].keys();
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| rotation::next_key_name(keys));
        return Ok(Change::Key(
            rotation::generate_key(&provider, &name).map_err(refused)?,
        ));
    }
    if provider == writer {
        return Err(Failure::usage(format!(
            "refused: {writer} writes already and has no keys; name another provider with --provider"
        )));
    }
    if new.name.is_some() && !provider.has_keys() {
        return Err(Failure::usage(format!(
            "{provider} has no keys: drop --name"
        )));
    }
    match &provider {
        ProviderId::Kms(name) => {
            let endpoint = new.kms_endpoint.as_deref().ok_or_else(|| {
                Failure::usage("a kms provider needs --kms-endpoint unix:///path")
            })?;
            let mut element = rotation::kms_v2_provider(name, endpoint);
            if let Some(kms) = &mut element.kms {
                kms.timeout = Some(
                    GoDuration::parse(&new.kms_timeout)
                        .map_err(|e| Failure::usage(format!("--kms-timeout: {e}")))?,
                );
            }
            Ok(Change::Provider(element))
        }
        ProviderId::Identity => Ok(Change::Provider(
            k8s_envelope::config::ProviderConfiguration {
                identity: Some(Default::default()),
                ..Default::default()
            },
        )),
        _ => {
            let name = new.name.clone().unwrap_or_else(|| "key1".to_owned());
            let key = rotation::generate_key(&provider, &name).map_err(refused)?;
            rotation::static_provider(&provider, key)
                .map(Change::Provider)
                .ok_or_else(|| Failure::usage("not a static-key provider"))
        }
    }
}

/// The `--name`/`--provider` of promote and retire, resolved in the rule.
fn member(
    config: &EncryptionConfiguration,
    rule: usize,
    args: &MemberArgs,
) -> Result<Member, Failure> {
    let provider = args
        .provider
        .as_deref()
        .map(str::parse::<ProviderId>)
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let Some(name) = &args.name else {
        // clap requires --name or --provider.
        return provider
            .map(Member::Provider)
            .ok_or_else(|| Failure::usage("give --name or --provider"));
    };
    if let Some(provider) = provider {
        return Ok(Member::Key {
            provider,
            name: name.clone(),
        });
    }
    // The provider that holds a key of that name; it must be only one.
    let holders: Vec<ProviderId> = config.resources[rule]
        .providers
        .iter()
        .filter(|p| p.keys().iter().any(|k| k.name == *name))
        .filter_map(ProviderId::of)
        .collect();
    match holders.as_slice() {
        [one] => Ok(Member::Key {
            provider: one.clone(),
            name: name.clone(),
        }),
        [] => Err(refused(RotationError::NotPresent {
            rule,
            member: Member::Key {
                provider: rotation::writer(config, rule).map_err(refused)?.0,
                name: name.clone(),
            },
        })),
        _ => Err(Failure::usage(format!(
            "several providers of resources[{rule}] have a key {name:?}; say which with --provider"
        ))),
    }
}

fn write_config(path: &Path, config: &EncryptionConfiguration) -> Result<(), Failure> {
    store_args::write_private(path, config.to_yaml().as_bytes())
}

fn add(args: &AddArgs) -> Result<(), Failure> {
    let (config, rule) = open(&args.rule)?;
    let (next, added) = match change(&config, rule, &args.new)? {
        Change::Key(key) => {
            let (provider, _) = rotation::writer(&config, rule).map_err(refused)?;
            let member = Member::Key {
                provider,
                name: key.name.clone(),
            };
            (
                rotation::add_key(&config, rule, key).map_err(refused)?,
                member,
            )
        }
        Change::Provider(element) => {
            let id = ProviderId::of(&element).ok_or_else(|| Failure::usage("no provider"))?;
            (
                rotation::add_provider(&config, rule, element).map_err(refused)?,
                Member::Provider(id),
            )
        }
    };
    write_config(&args.out, &next)?;
    eprintln!(
        "wrote {}: {added} added as a reader; resources[{rule}] providers: {}",
        args.out.display(),
        rotation::describe_providers(&next.resources[rule])
    );
    eprintln!(
        "next: install it on every kube-apiserver (restart each, or wait for the automatic reload), then: k8s-envelope rotate promote --config {} --out NEW --resource {} {}",
        args.out.display(),
        args.rule.resource,
        member_flags(&added)
    );
    Ok(())
}

fn promote(args: &MemberArgs) -> Result<(), Failure> {
    let (config, rule) = open(&args.rule)?;
    let member = member(&config, rule, args)?;
    let next = rotation::promote(&config, rule, &member).map_err(refused)?;
    write_config(&args.out, &next)?;
    eprintln!(
        "wrote {}: {member} writes; resources[{rule}] providers: {}",
        args.out.display(),
        rotation::describe_providers(&next.resources[rule])
    );
    eprintln!(
        "next: install it on every kube-apiserver, then: k8s-envelope reencrypt --config {} (--etcd URL | --dump FILE --out FILE) --prefix {}",
        args.out.display(),
        prefixes(&next, rule).join(" / ")
    );
    Ok(())
}

fn retire(args: &RetireArgs) -> Result<(), Failure> {
    let (config, rule) = open(&args.member.rule)?;
    let member = member(&config, rule, &args.member)?;
    // Refuse out-of-order steps before looking at the store.
    let next = rotation::retire(&config, rule, &member).map_err(refused)?;
    if args.store.given() {
        let runtime = store_args::runtime()?;
        let transformers = configuration::build(
            &config,
            &args.member.rule.config,
            &runtime,
            StatusLoops::Run,
        )?
        .transformers;
        // Every prefix the rule's resources live under, unless one is given
        // (and then it must reach into one of them: a typo scans nothing
        // and would retire a key still in use).
        let rule_prefixes = prefixes(&config, rule);
        let prefixes = match &args.store.prefix {
            Some(prefix) => {
                check_prefix_in_rule(prefix, &rule_prefixes, &config, rule)?;
                vec![prefix.clone()]
            }
            None => rule_prefixes,
        };
        let mut in_use = 0;
        for prefix in &prefixes {
            let report = crate::scan::scan_store(
                &args.store,
                prefix,
                None,
                4,
                &runtime,
                transformers.clone(),
            )?;
            let found = report.written_by(&config, rule, &member);
            eprintln!(
                "scanned {} value(s) under {prefix}: {found} written by {member}",
                report.total
            );
            if report.total == 0 {
                eprintln!(
                    "note: nothing is stored under {prefix} (no object of that resource, or \
                     --etcd-prefix is not the apiserver's)"
                );
            }
            in_use += found;
        }
        if in_use > 0 && !args.force {
            return Err(Failure::transform(format!(
                "refused: {in_use} stored value(s) still use {member}; re-encrypt them first (k8s-envelope reencrypt), or --force to make them unreadable"
            )));
        }
    } else if !args.force {
        return Err(Failure::usage(
            "refused: give the store to check for values still using it (--etcd URL or --dump FILE, with --prefix), or --force",
        ));
    }
    write_config(&args.member.out, &next)?;
    eprintln!(
        "wrote {}: {member} retired; resources[{rule}] providers: {}",
        args.member.out.display(),
        rotation::describe_providers(&next.resources[rule])
    );
    eprintln!("next: install it on every kube-apiserver. Keep the old key until backups from before the re-encryption have expired.");
    Ok(())
}

/// Refuses a `--prefix` that no key of the rule's resources can start
/// with: neither inside one of their prefixes nor around one.
fn check_prefix_in_rule(
    prefix: &str,
    rule_prefixes: &[String],
    config: &EncryptionConfiguration,
    rule: usize,
) -> Result<(), Failure> {
    let overlaps = rule_prefixes
        .iter()
        .any(|p| prefix.starts_with(p.as_str()) || p.starts_with(prefix));
    if overlaps {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "refused: --prefix {} is outside every resource of resources[{rule}] ({}), whose keys \
         are under {}: a scan there would find none of the values this retirement must count",
        k8s_envelope::store::printable(prefix.as_bytes()),
        config.resources[rule].resources.join(", "),
        rule_prefixes.join(", ")
    )))
}

fn member_flags(member: &Member) -> String {
    match member {
        Member::Key { name, .. } => format!("--name {name}"),
        Member::Provider(id) => format!("--provider {id}"),
    }
}

fn prefixes(config: &EncryptionConfiguration, rule: usize) -> Vec<String> {
    KeyLayout::default().prefixes_for(&config.resources[rule].resources)
}

fn plan(args: &PlanArgs) -> Result<(), Failure> {
    // The commands printed would be refused for it, and a password must
    // not reach a printed plan (or a terminal's scrollback).
    // Any `@`, as the library's etcd client counts it: etcd URLs have no
    // path, and a password may hold `/`, `?` or `#` unencoded.
    if args.etcd.iter().any(|url| url.contains('@')) {
        return Err(Failure::usage(
            "--etcd: user info (user:password@) in an etcd URL is refused; authenticate with a \
             client certificate (--cert and --key)",
        ));
    }
    let (config, rule) = open(&args.rule)?;
    let change = change(&config, rule, &args.new)?;
    let plan = rotation::plan(&config, rule, change).map_err(refused)?;
    let path = &args.rule.config;
    let file = |n: usize, step: StepKind| {
        let stem = path
            .file_stem()
            .map_or_else(|| "config".into(), |s| s.to_string_lossy());
        let name = format!("{stem}.{n}-{}.yaml", step.as_str());
        path.with_file_name(name).display().to_string()
    };
    let store = store_flags(args);
    let resource = &args.rule.resource;
    let new_flags = match &plan.new {
        Member::Key { name, .. } => format!("--name {name}"),
        Member::Provider(ProviderId::Kms(name)) => format!(
            "--provider kms:{name} --kms-endpoint {}",
            args.new.kms_endpoint.as_deref().unwrap_or("ENDPOINT")
        ),
        Member::Provider(id) => format!("--provider {id}"),
    };
    let (c1, c2, c4) = (
        file(1, StepKind::Add),
        file(2, StepKind::Promote),
        file(4, StepKind::Retire),
    );
    let src = path.display().to_string();
    let prefixes = prefixes(&config, rule);
    let commands = [
        vec![format!("k8s-envelope rotate add-key --config {src} --out {c1} --resource {resource} {new_flags}")],
        vec![format!("k8s-envelope rotate promote --config {c1} --out {c2} --resource {resource} {}", member_flags(&plan.new))],
        reencrypt_commands(args, &c2, &prefixes),
        vec![format!(
            "k8s-envelope rotate retire --config {c2} --out {c4} --resource {resource} {} {store}",
            member_flags(&plan.old)
        )],
    ];
    println!(
        "Rotation of resources[{rule}] ({}): {} -> {}",
        config.resources[rule].resources.join(", "),
        plan.old,
        plan.new
    );
    println!(
        "now: {}",
        rotation::describe_providers(&config.resources[rule])
    );
    for (i, (step, commands)) in plan.steps.iter().zip(commands).enumerate() {
        println!();
        println!("{}. {}", i + 1, step.action);
        for command in commands {
            println!("   $ {command}");
        }
        println!("   then: {}.", step.then);
    }
    Ok(())
}

/// Step 3: for each key prefix of the rule, a re-encryption and a scan.
/// On etcd each re-encryption has a checkpoint of its own (one file for
/// two prefixes would make the second run refuse to start). A dump is
/// re-encrypted prefix after prefix, each run reading what the one before
/// wrote, the last into the file the retirement reads.
fn reencrypt_commands(args: &PlanArgs, config: &str, prefixes: &[String]) -> Vec<String> {
    let mut commands = Vec::new();
    let mut previous = args.dump.as_ref().map(|dump| dump.display().to_string());
    for (i, prefix) in prefixes.iter().enumerate() {
        let slug = prefix_slug(prefix);
        let (reencrypt, scan) = match (&args.dump, previous.as_mut()) {
            (Some(dump), Some(previous)) => {
                let out = if i + 1 == prefixes.len() {
                    reencrypted_dump(dump)
                } else {
                    format!(
                        "{}.reencrypted-{slug}.json",
                        dump.with_extension("").display()
                    )
                };
                let input = std::mem::replace(previous, out.clone());
                (
                    format!("--dump {input} --out {out}"),
                    format!("--dump {out}"),
                )
            }
            _ => {
                let store = store_flags(args);
                (
                    format!("{store} --prefix {prefix} --checkpoint reencrypt-{slug}.checkpoint"),
                    store,
                )
            }
        };
        let reencrypt = if args.dump.is_some() {
            format!("{reencrypt} --prefix {prefix}")
        } else {
            reencrypt
        };
        commands.push(format!(
            "k8s-envelope reencrypt --config {config} {reencrypt}"
        ));
        commands.push(format!(
            "k8s-envelope scan --config {config} {scan} --prefix {prefix}"
        ));
    }
    commands
}

/// A key prefix as part of a file name: `/registry/secrets/` is
/// `secrets`, `/registry/example.com/widgets/` is `example.com-widgets`.
fn prefix_slug(prefix: &str) -> String {
    let trimmed = prefix
        .strip_prefix(DEFAULT_ETCD_PREFIX)
        .unwrap_or(prefix)
        .trim_matches('/');
    trimmed
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' => c,
            _ => '_',
        })
        .collect()
}

/// The file a dump is re-encrypted into, which the retirement reads.
fn reencrypted_dump(dump: &Path) -> String {
    format!("{}.reencrypted.json", dump.with_extension("").display())
}

/// The store flags of the printed commands that read the store as it is
/// after step 3: etcd, or the re-encrypted dump.
fn store_flags(args: &PlanArgs) -> String {
    if let Some(dump) = &args.dump {
        return format!("--dump {}", reencrypted_dump(dump));
    }
    let mut out = if args.etcd.is_empty() {
        "--etcd URL".to_owned()
    } else {
        format!("--etcd {}", args.etcd.join(","))
    };
    for (flag, value) in [
        ("--cacert", &args.cacert),
        ("--cert", &args.cert),
        ("--key", &args.key),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(" {flag} {}", v.display()));
        }
    }
    out
}
