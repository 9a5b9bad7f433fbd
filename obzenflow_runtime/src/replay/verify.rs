//! [`verify`]: compare two run directories stage by stage, and trace each first divergent
//! record back to the source record it descends from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use obzenflow_core::{ChainEvent, CorrelationId, Lane};

use super::compare::{compare_lanes, LaneTail, RecordView, SourceRecord};
use super::error::{Side, VerifyError};
use super::report::{Compared, Presence, RunSummary, StageComparison, VerifyReport};
use crate::journal::{inspect, ManifestStage, RunDirectory, RunManifest};
use crate::stages::StageKind;

/// Compares the run in `candidate` with the run in `baseline`, stage by stage.
///
/// For every stage of both runs it compares the data records of the data lane and of the error
/// lane in order (event type, schema version, payload, processing status), the end-of-stream
/// count and the terminal outcome. Ids, timestamps, durations, run ids and processing times
/// differ by nature and are ignored. A stage in one run only is a difference. Each lane's first
/// divergent record is reported from both runs with its correlation id and the source record
/// it leads back to.
///
/// A stage that reads several upstreams sees their records in commit order, which can differ
/// between runs; such a stage can show differences even when every record is the same.
///
/// ```no_run
/// use obzenflow_runtime::replay::verify;
///
/// let report = verify(
///     "target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f112233445566",
///     "target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f998877665544",
/// )?;
/// println!("{report}");
/// if !report.is_identical() {
///     std::process::exit(1);
/// }
/// # Ok::<(), obzenflow_runtime::replay::VerifyError>(())
/// ```
pub fn verify(
    baseline: impl AsRef<Path>,
    candidate: impl AsRef<Path>,
) -> Result<VerifyReport, VerifyError> {
    let baseline = OpenedRun::open(Side::Baseline, baseline.as_ref())?;
    let candidate = OpenedRun::open(Side::Candidate, candidate.as_ref())?;
    let mut stages = Vec::new();
    for stage in &baseline.manifest.stages {
        stages.push(match candidate.stage(&stage.name) {
            Some(_) => compare_stage(&baseline, &candidate, stage)?,
            None => one_sided(stage, Presence::BaselineOnly),
        });
    }
    for stage in &candidate.manifest.stages {
        if baseline.stage(&stage.name).is_none() {
            stages.push(one_sided(stage, Presence::CandidateOnly));
        }
    }
    baseline.resolve_sources(&mut stages)?;
    candidate.resolve_sources(&mut stages)?;
    let differences = stages.iter().map(StageComparison::differences).sum();
    Ok(VerifyReport {
        baseline: baseline.summary(),
        candidate: candidate.summary(),
        stages,
        differences,
    })
}

/// One of the two runs, with its manifest read.
struct OpenedRun {
    side: Side,
    run_dir: PathBuf,
    manifest: RunManifest,
}

impl OpenedRun {
    fn open(side: Side, run_dir: &Path) -> Result<Self, VerifyError> {
        let manifest = RunDirectory::open(run_dir)
            .and_then(|run| run.read_manifest())
            .map_err(|source| VerifyError::Run {
                side,
                run_dir: run_dir.to_path_buf(),
                source: Box::new(source),
            })?;
        Ok(Self {
            side,
            run_dir: run_dir.to_path_buf(),
            manifest,
        })
    }

    fn stage(&self, name: &str) -> Option<&ManifestStage> {
        self.manifest.stages.iter().find(|stage| stage.name == name)
    }

    fn summary(&self) -> RunSummary {
        RunSummary {
            run_dir: self.run_dir.clone(),
            run_id: self.manifest.run_id,
            flow_name: self.manifest.flow_name.clone(),
            status: self.manifest.status,
            replayed_from: self.manifest.replayed_from.clone(),
        }
    }

    /// The events of one journal, with read errors naming this run, the stage and the lane.
    fn events<'a>(
        &'a self,
        stage: &'a str,
        lane: Lane,
    ) -> Result<impl Iterator<Item = Result<ChainEvent, VerifyError>> + 'a, VerifyError> {
        let side = self.side;
        let journal_error = move |source| VerifyError::Journal {
            side,
            stage: stage.to_owned(),
            lane,
            source: Box::new(source),
        };
        let records = inspect::read_journal(&self.run_dir, stage, lane).map_err(journal_error)?;
        Ok(records.map(move |record| record.map_err(journal_error)))
    }

    /// Fills in the source record of every divergent record of this run.
    fn resolve_sources(&self, stages: &mut [StageComparison]) -> Result<(), VerifyError> {
        let mut wanted: HashMap<CorrelationId, Option<SourceRecord>> = self
            .divergent_records(stages)
            .flat_map(|record| {
                std::iter::once(record.correlation_id).chain(record.joined_correlation_id)
            })
            .map(|correlation| (correlation, None))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let source_kind = StageKind::Source.as_str();
        for stage in self
            .manifest
            .stages
            .iter()
            .filter(|s| s.kind == source_kind)
        {
            for lane in [Lane::Data, Lane::Error] {
                self.find_sources(&stage.name, lane, &mut wanted)?;
            }
        }
        for stage in stages.iter_mut() {
            for lane in [&mut stage.data, &mut stage.error].into_iter().flatten() {
                let Some(divergence) = &mut lane.first_divergence else {
                    continue;
                };
                let record = match self.side {
                    Side::Baseline => divergence.baseline.as_mut(),
                    Side::Candidate => divergence.candidate.as_mut(),
                };
                if let Some(record) = record {
                    record.source = wanted.get(&record.correlation_id).cloned().flatten();
                    record.joined_source = record
                        .joined_correlation_id
                        .and_then(|joined| wanted.get(&joined).cloned().flatten());
                }
            }
        }
        Ok(())
    }

    fn divergent_records<'a>(
        &self,
        stages: &'a [StageComparison],
    ) -> impl Iterator<Item = &'a RecordView> + 'a {
        let side = self.side;
        stages
            .iter()
            .flat_map(|stage| [&stage.data, &stage.error])
            .flatten()
            .filter_map(|lane| lane.first_divergence.as_ref())
            .filter_map(move |divergence| match side {
                Side::Baseline => divergence.baseline.as_ref(),
                Side::Candidate => divergence.candidate.as_ref(),
            })
    }

    /// Looks the wanted correlation ids up among the data records of one source journal.
    fn find_sources(
        &self,
        stage: &str,
        lane: Lane,
        wanted: &mut HashMap<CorrelationId, Option<SourceRecord>>,
    ) -> Result<(), VerifyError> {
        let records = self.events(stage, lane)?.filter(|event| {
            // Errors pass so that they are reported; only data records have an index.
            event.as_ref().map_or(true, ChainEvent::is_data)
        });
        for (index, event) in records.enumerate() {
            let event = event?;
            if let Some(slot) = wanted.get_mut(&CorrelationId::from_origin(event.id)) {
                *slot = Some(SourceRecord {
                    stage: stage.to_owned(),
                    lane,
                    index: index as u64,
                    event_id: event.id,
                    replayed_from: event.causality.parent_id,
                });
            }
        }
        Ok(())
    }
}

fn compare_stage(
    baseline: &OpenedRun,
    candidate: &OpenedRun,
    stage: &ManifestStage,
) -> Result<StageComparison, VerifyError> {
    let (data, baseline_tail, candidate_tail) = compare_lanes(
        baseline.events(&stage.name, Lane::Data)?,
        candidate.events(&stage.name, Lane::Data)?,
    )?;
    let (error, _, _) = compare_lanes(
        baseline.events(&stage.name, Lane::Error)?,
        candidate.events(&stage.name, Lane::Error)?,
    )?;
    Ok(StageComparison {
        stage: stage.name.clone(),
        kind: stage.kind.clone(),
        presence: Presence::Both,
        data: Some(data),
        error: Some(error),
        end_of_stream: compared(&baseline_tail, &candidate_tail, |tail| tail.end_of_stream),
        outcome: compared(&baseline_tail, &candidate_tail, |tail| {
            tail.outcome.map(str::to_owned)
        }),
    })
}

fn compared<T>(
    baseline: &LaneTail,
    candidate: &LaneTail,
    pick: impl Fn(&LaneTail) -> T,
) -> Compared<T> {
    Compared {
        baseline: pick(baseline),
        candidate: pick(candidate),
    }
}

fn one_sided(stage: &ManifestStage, presence: Presence) -> StageComparison {
    StageComparison {
        stage: stage.name.clone(),
        kind: stage.kind.clone(),
        presence,
        data: None,
        error: None,
        end_of_stream: Compared {
            baseline: None,
            candidate: None,
        },
        outcome: Compared {
            baseline: None,
            candidate: None,
        },
    }
}
