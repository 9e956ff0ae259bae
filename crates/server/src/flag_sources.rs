//! Where the binary's flags come from besides the command line (part of `main.rs`,
//! not of the library): environment variables `CHAT_SERVER_<FLAG>` and a TOML file
//! (`--config=FILE`) whose keys are the flags' long names.
//!
//! Precedence, highest first: the command line, the environment, the config file,
//! the built-in defaults. The environment is clap's own (`Arg::env`, set on every
//! setting by [`with_env`]). The file is merged by hand: the command line and the
//! environment are parsed first, and each key of the file becomes `--key=value`
//! arguments placed before the real ones only if neither of them gave that flag. So a
//! repeatable flag (`web-host`) takes all its values from one place: the first of the
//! command line, the environment and the file that gives any.
//!
//! A file that cannot be read or parsed, an unknown key, a value of the wrong TOML
//! type or one the flag refuses is an error naming the file, the key and its line;
//! the binary exits with status 2 then, as for any usage error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// Every variable of the environment that sets a flag starts with this.
pub(crate) const ENV_PREFIX: &str = "CHAT_SERVER_";

/// The flag that names the config file (not a key of the file itself).
const CONFIG: &str = "config";

/// Flags that are actions, not settings: no variable, no key.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "completions", "man"];

/// The variable for the flag `--long`: `web-host` → `CHAT_SERVER_WEB_HOST`.
pub(crate) fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// Gives every setting of `command` (not its subcommands') its variable, and lets a
/// repeatable flag's variable hold several values separated by commas.
pub(crate) fn with_env(command: Command) -> Command {
    command.mut_args(|arg| {
        let Some(name) = arg
            .get_long()
            .filter(|l| !NOT_SETTINGS.contains(l))
            .map(env_name)
        else {
            return arg;
        };
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let arg = arg.env(name);
        if repeatable {
            arg.value_delimiter(',')
        } else {
            arg
        }
    })
}

/// Variables that start with [`ENV_PREFIX`] but set no flag of `command` (a typo
/// would otherwise be ignored in silence).
pub(crate) fn unknown_variables(command: &Command) -> Vec<String> {
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .collect();
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with(ENV_PREFIX) && !known.contains(name))
        .collect();
    unknown.sort();
    unknown
}

/// Parses `args` (the program's name first) together with the environment and, if
/// `--config` (or `CHAT_SERVER_CONFIG`) names one, the config file. A usage error on
/// the command line or in the environment ends the process the way clap does (help
/// and version too); a problem with the file is answered as a message for the user.
pub(crate) fn parse(
    command: impl Fn() -> Command,
    args: Vec<OsString>,
) -> Result<ArgMatches, String> {
    // What the command line and the environment say. A flag the file may still
    // supply (`--tls-cert` here, `tls-key` in the file) is a missing argument until
    // the file is read: look at what was given all the same.
    let given = match command().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => command()
            .ignore_errors(true)
            .try_get_matches_from(&args)
            .unwrap_or_else(|e| e.exit()),
        Err(e) => return Err(from_environment(&e, &args).unwrap_or_else(|| e.exit())),
    };
    let Some(path) = given.get_one::<PathBuf>(CONFIG).cloned() else {
        return Ok(command()
            .try_get_matches_from(args)
            .unwrap_or_else(|e| e.exit()));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let settings = read_settings(&command(), &path, &text)?;
    let mut merged: Vec<OsString> = args.iter().take(1).cloned().collect();
    for setting in settings {
        let overridden = matches!(
            given.value_source(&setting.id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !overridden {
            merged.extend(setting.args.into_iter().map(OsString::from));
        }
    }
    merged.extend(args.into_iter().skip(1));
    command().try_get_matches_from(merged).map_err(|e| {
        // Together the sources say something that none says alone (`no-store` in the
        // file, `--data-dir` on the command line): clap's message, and where from.
        format!(
            "with the settings of config file {}: {}",
            path.display(),
            first_line(&e)
        )
    })
}

/// clap's complaint about a value, naming the variable it came from when it came from
/// the environment (clap names only the flag); `None` for anything else.
fn from_environment(e: &clap::Error, args: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(flag)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--port <PORT>`, `--no-store`.
    let long = flag.strip_prefix("--")?.split([' ', '=']).next()?;
    let given = args.iter().skip(1).any(|arg| {
        arg.to_str().is_some_and(|arg| {
            arg.strip_prefix("--")
                .and_then(|rest| rest.strip_prefix(long))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
    });
    let name = env_name(long);
    if given || std::env::var_os(&name).is_none() {
        return None;
    }
    Some(format!("{name}: {}", first_line(e)))
}

/// One key of the config file, as arguments.
#[derive(Debug, PartialEq)]
struct Setting {
    /// The flag's id (for its value source).
    id: String,
    /// `--key=value`, once per value (none for a switch set to false).
    args: Vec<String>,
}

/// The file's keys as arguments, in the order they appear, each checked against the
/// flag it names.
fn read_settings(command: &Command, path: &Path, text: &str) -> Result<Vec<Setting>, String> {
    let table = DeTable::parse(text).map_err(|e| {
        format!(
            "config file {}: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut settings = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let line = text[..key.span().start].matches('\n').count() + 1;
        let key = key.get_ref().as_ref();
        let at = || format!("config file {}, line {line}", path.display());
        let arg = setting_arg(command, key).ok_or_else(|| {
            let hint = setting_arg(command, &key.replace('_', "-"))
                .and_then(Arg::get_long)
                .map(|long| format!(" (did you mean \"{long}\"?)"))
                .unwrap_or_default();
            format!(
                "{}: unknown key \"{key}\": chat-server has no flag --{key}{hint}",
                at()
            )
        })?;
        let values = values_of(arg, value.get_ref()).map_err(|expected| {
            format!(
                "{}: \"{key}\" must be {expected}, not {}",
                at(),
                article(value.get_ref().type_str())
            )
        })?;
        let mut args = Vec::with_capacity(values.len());
        for value in values {
            let arg_text = match &value {
                Some(value) => format!("--{key}={value}"),
                None => format!("--{key}"),
            };
            if let Some(value) = value {
                check_value(arg, key, &value)
                    .map_err(|why| format!("{}: \"{key}\": {why}", at()))?;
            }
            args.push(arg_text);
        }
        settings.push(Setting {
            id: arg.get_id().to_string(),
            args,
        });
    }
    Ok(settings)
}

/// The setting of `command` whose long name is `key`.
fn setting_arg<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|arg| {
        arg.get_long()
            .is_some_and(|long| long == key && long != CONFIG && !NOT_SETTINGS.contains(&long))
    })
}

/// The values `value` gives the flag `arg` (`None`: the switch alone), or what the
/// flag takes instead.
fn values_of(arg: &Arg, value: &DeValue<'_>) -> Result<Vec<Option<String>>, &'static str> {
    match arg.get_action() {
        ArgAction::SetTrue => match value {
            DeValue::Boolean(true) => Ok(vec![None]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            _ => Err("true or false"),
        },
        ArgAction::Append => match value {
            DeValue::Array(items) => items
                .iter()
                .map(|item| scalar(item.get_ref()).map(Some))
                .collect::<Option<Vec<_>>>()
                .ok_or("a string or a number, or an array of them"),
            _ => scalar(value)
                .map(|one| vec![Some(one)])
                .ok_or("a string or a number, or an array of them"),
        },
        _ => scalar(value)
            .map(|one| vec![Some(one)])
            .ok_or("a string or a number"),
    }
}

/// A string, an integer or a float as the command line would spell it.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(int) => i128::from_str_radix(int.as_str(), int.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(float) => float
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .map(|f| f.to_string()),
        _ => None,
    }
}

/// `integer` → `an integer`.
fn article(type_name: &str) -> String {
    let an = type_name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_name}", if an { "an" } else { "a" })
}

/// Whether `arg` takes `value` (its own value parser, alone: other flags' rules are
/// checked when everything is parsed together); clap's reason if not.
fn check_value(arg: &Arg, key: &str, value: &str) -> Result<(), String> {
    let mut alone = Arg::new(arg.get_id().clone())
        .long(key.to_owned())
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        alone = alone.value_names(names.to_vec());
    }
    Command::new("chat-server")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{key}={value}")])
        .map(|_| ())
        .map_err(|e| first_line(&e))
}

/// clap's message on one line, without its `error: ` and the usage after it (a list
/// of missing flags, on lines of their own, is kept).
fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    message.join(" ").trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Command {
        with_env(
            Command::new("t")
                .arg(
                    Arg::new("port")
                        .long("port")
                        .value_parser(clap::value_parser!(u16)),
                )
                .arg(Arg::new("switch").long("switch").action(ArgAction::SetTrue))
                .arg(Arg::new("many").long("many").action(ArgAction::Append)),
        )
    }

    fn settings(text: &str) -> Result<Vec<Setting>, String> {
        read_settings(&command(), Path::new("f.toml"), text)
    }

    #[test]
    fn keys_become_arguments_in_file_order() {
        let got = settings("port = 0x10\nmany = [\"a\", 2]\nswitch = true\n").unwrap();
        assert_eq!(
            got,
            vec![
                Setting {
                    id: "port".into(),
                    args: vec!["--port=16".into()]
                },
                Setting {
                    id: "many".into(),
                    args: vec!["--many=a".into(), "--many=2".into()]
                },
                Setting {
                    id: "switch".into(),
                    args: vec!["--switch".into()]
                },
            ]
        );
        assert_eq!(
            settings("switch = false").unwrap()[0].args,
            Vec::<String>::new()
        );
        assert_eq!(settings("many = \"one\"").unwrap()[0].args, ["--many=one"]);
    }

    #[test]
    fn mistakes_name_the_file_the_line_and_the_key() {
        assert_eq!(
            settings("\nprot = 1").unwrap_err(),
            "config file f.toml, line 2: unknown key \"prot\": chat-server has no flag --prot"
        );
        assert_eq!(
            settings("port = true").unwrap_err(),
            "config file f.toml, line 1: \"port\" must be a string or a number, not a boolean"
        );
        assert_eq!(
            settings("port = [1]").unwrap_err(),
            "config file f.toml, line 1: \"port\" must be a string or a number, not an array"
        );
        assert_eq!(
            settings("switch = \"yes\"").unwrap_err(),
            "config file f.toml, line 1: \"switch\" must be true or false, not a string"
        );
        assert_eq!(
            settings("port = 70000").unwrap_err(),
            "config file f.toml, line 1: \"port\": invalid value '70000' for '--port <port>': 70000 is not in 0..=65535"
        );
        assert!(
            settings("port = ")
                .unwrap_err()
                .starts_with("config file f.toml: TOML parse error at line 1"),
        );
    }

    #[test]
    fn variables_are_named_after_the_long_flag() {
        assert_eq!(env_name("web-host"), "CHAT_SERVER_WEB_HOST");
        let command = command();
        let port = command
            .get_arguments()
            .find(|a| a.get_id() == "port")
            .unwrap();
        assert_eq!(port.get_env().unwrap(), "CHAT_SERVER_PORT");
    }
}
