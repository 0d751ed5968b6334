//! Every failure is a value carrying the one-line message that the TypeScript
//! side turns into an `Error`; nothing here is allowed to panic on bad input.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotElf,
    /// The ELF machine name, e.g. "aarch64".
    WrongArch(String),
    NotGo,
    /// Truncated or otherwise inconsistent file; the text says what broke.
    Malformed(String),
    /// Debug information present but unreadable.
    Dwarf(String),
    FunctionNotFound(String),
    /// The caller broke the ABI contract (e.g. no target opened yet).
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotElf => write!(f, "not an ELF file"),
            Error::WrongArch(machine) => write!(f, "ELF for {machine}, not x86-64"),
            Error::NotGo => write!(f, "not a Go program (no .go.buildinfo, .gopclntab or runtime symbols)"),
            Error::Malformed(what) => write!(f, "truncated or malformed ELF: {what}"),
            Error::Dwarf(what) => write!(f, "malformed DWARF: {what}"),
            Error::FunctionNotFound(name) => write!(f, "function {name} not found"),
            Error::Usage(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<gimli::Error> for Error {
    fn from(e: gimli::Error) -> Self {
        Error::Dwarf(e.to_string())
    }
}
