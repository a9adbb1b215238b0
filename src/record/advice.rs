//! What a step's failure advises, apart from its message: the note that gives context and the
//! help that says what to do (see [`crate::error::advice`]). dap-run's own kinds say it here;
//! the transport's, the replica's and a token source's failures give their own.

use super::error::StepErrorKind;
use crate::error::advice::join;
use crate::error::{BUG_HELP, ExitCode};
use crate::net::HttpError;

impl StepErrorKind {
    /// Context beside the message (see [`crate::error::advice`]).
    pub fn note(&self) -> Option<String> {
        use StepErrorKind as K;
        match self {
            K::Http {
                source: HttpError::Token { source },
                ..
            } => source.note(),
            K::Http {
                source,
                url_refreshed,
            } => join(
                source.note(),
                (*url_refreshed && source.exit_code() == ExitCode::Gateway)
                    .then(|| "the URL was refreshed once already".to_owned()),
            ),
            K::Load(e) => e.note(),
            K::Check { failures } => failures
                .iter()
                .map(super::detail::CheckFailure::values_text)
                .fold(None, join),
            K::WouldReplace(_) => Some("nothing is lost: the run fails, so its state is not saved and the next run asks for the same data again".to_owned()),
            _ => None,
        }
    }

    /// What to do about it, apart from the message (see [`crate::error::advice`]).
    pub fn help(&self) -> Option<String> {
        use StepErrorKind as K;
        Some(match self {
            K::Http {
                source: HttpError::Token { source },
                ..
            } => return source.help(),
            // The transport's and the replica's texts, with their advice.
            K::Http { source, .. } => return source.help(),
            K::Load(e) => return e.help(),
            K::PollTimeout { .. } => {
                "raise `poll.timeout`, or check the gateway job's progress".to_owned()
            }
            K::NotIncremental { .. } => "fix the state lookup in the request's `since`; to take new snapshots on purpose, delete the state file".to_owned(),
            K::SameDownloadPath { .. } => {
                "use `part` in `download.to`, e.g. `part-{{ part | pad(5) }}.jsonl.gz`".to_owned()
            }
            K::OutputMissing { .. } => {
                "check the path, or mark the output `optional = true`".to_owned()
            }
            K::WouldReplace(_) => "give each gateway job its own folder in `download.to`, e.g. `{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl.gz` (a gateway with no new data answers again with the same `until`); or move the file away if nothing needs it".to_owned(),
            K::StateNotSaved { .. } => "the files of this run are complete; fix the folder's permissions or space, and the next run fetches the same changes again".to_owned(),
            K::Internal { .. } | K::NoDatabase => BUG_HELP.to_owned(),
            K::PollAnswerNotJson { .. }
            | K::AnswerNotJson { .. }
            | K::NoUrls { .. }
            | K::UrlNotAString { .. }
            | K::BadUrl { .. }
            | K::UrlNotHttp { .. }
            | K::FreshUrlsNotJson { .. }
            | K::Template { .. }
            | K::Loop(_)
            | K::NoRequest { .. }
            | K::Url(_)
            | K::UnsafePath(_)
            | K::Check { .. }
            | K::Io { .. }
            | K::Interrupted(_) => return None,
        })
    }
}
