//! The objects of a load as their downloads complete: a channel between the downloads, which
//! push each part's file in order, and the load, which reads the parts already there and waits
//! for the next, so the database works while the next parts download.

use std::path::PathBuf;

use super::DbError;

/// The objects of a load as their downloads complete: the downloads push each part's file, in
/// order, while the load reads the parts already there and waits for the next. A retried load
/// reads them again from the first.
#[derive(Debug, Clone)]
pub struct Parts(tokio::sync::watch::Receiver<PartList>);

/// The downloads' end of [`Parts`]. Dropped before [`PartsSender::finish`] (a download failed),
/// the load waiting for a further part fails with [`DbError::Downloads`].
#[derive(Debug)]
pub struct PartsSender(tokio::sync::watch::Sender<PartList>);

/// The parts downloaded so far, and whether that is all of them.
#[derive(Debug, Clone, Default)]
pub struct PartList {
    files: Vec<PathBuf>,
    complete: bool,
}

impl Parts {
    /// A channel for parts still to come.
    pub fn channel() -> (PartsSender, Parts) {
        let (tx, rx) = tokio::sync::watch::channel(PartList::default());
        (PartsSender(tx), Parts(rx))
    }

    /// Parts that are all on disk already.
    pub fn ready(files: Vec<PathBuf>) -> Parts {
        let (tx, rx) = tokio::sync::watch::channel(PartList {
            files,
            complete: true,
        });
        drop(tx);
        Parts(rx)
    }

    /// The file of part `i` once it is downloaded; `None` when there are only `i` parts.
    pub async fn get(&self, i: usize) -> Result<Option<PathBuf>, DbError> {
        let mut rx = self.0.clone();
        let list = rx
            .wait_for(|l| l.complete || l.files.len() > i)
            .await
            .map_err(|_| DbError::Downloads { part: i })?;
        Ok(list.files.get(i).cloned())
    }

    /// Every part, once all are downloaded.
    pub async fn all(&self) -> Result<Vec<PathBuf>, DbError> {
        let mut rx = self.0.clone();
        let list = rx
            .wait_for(|l| l.complete)
            .await
            .map_err(|_| DbError::Downloads {
                part: self.0.borrow().files.len(),
            })?;
        Ok(list.files.clone())
    }

    /// The parts downloaded so far.
    pub fn downloaded(&self) -> Vec<PathBuf> {
        self.0.borrow().files.clone()
    }
}

impl PartsSender {
    /// One more part, the next in order.
    pub fn push(&self, file: PathBuf) {
        self.0.send_modify(|l| l.files.push(file));
    }

    /// No more parts.
    pub fn finish(self) {
        self.0.send_modify(|l| l.complete = true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_arrive_in_order_and_a_dropped_sender_fails_the_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, parts) = Parts::channel();
            let reader = {
                let parts = parts.clone();
                tokio::spawn(async move {
                    let mut got = vec![];
                    let mut i = 0;
                    while let Some(p) = parts.get(i).await.unwrap() {
                        got.push(p);
                        i += 1;
                    }
                    got
                })
            };
            tx.push("a".into());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            tx.push("b".into());
            tx.finish();
            assert_eq!(reader.await.unwrap(), [PathBuf::from("a"), "b".into()]);
            assert_eq!(parts.all().await.unwrap().len(), 2);

            let (tx, parts) = Parts::channel();
            tx.push("a".into());
            drop(tx);
            assert_eq!(parts.get(0).await.unwrap(), Some(PathBuf::from("a")));
            assert!(matches!(
                parts.get(1).await,
                Err(DbError::Downloads { part: 1 })
            ));
            assert!(parts.all().await.is_err());
            assert_eq!(Parts::ready(vec![]).get(0).await.unwrap(), None);
        });
    }
}
