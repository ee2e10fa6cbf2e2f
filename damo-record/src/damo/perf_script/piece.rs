//! A chunk of whole lines parsed on a worker thread into runs of regions, ready to become
//! snapshots: a run usually is a whole snapshot, whose regions the builder keeps as they are.

use super::line::{LineParser, RegionLine};
use crate::{budget::bytes_of, model::Region};

/// Region lines in a row (no other line between them) of one target, time and count.
pub struct Run {
    /// The first line's number within its piece, from 1.
    pub first_line: usize,
    pub scheme_idx: Option<u32>,
    pub target_id: u64,
    pub end_ns: u64,
    pub nr_regions: u32,
    /// Whether the lines are damo's fake end marker.
    pub fake: bool,
    pub regions: Vec<Region>,
}

impl Run {
    fn new(line: RegionLine, number: usize, bytes_left: usize) -> Run {
        // Room for the snapshot's regions, but no more than the lines left can fill (a line
        // is 30 bytes or more) nor a page's worth of regions per line: each run stays within a
        // few times the text it came from.
        let capacity = (line.nr_regions as usize).min(bytes_left / 30 + 1).min(1 << 12);
        let mut regions = Vec::with_capacity(capacity);
        regions.push(line.region);
        Run { first_line: number, scheme_idx: line.scheme_idx, target_id: line.target_id, end_ns: line.end_ns, nr_regions: line.nr_regions, fake: line.fake, regions }
    }

    /// Adds `line`, number `number`, if it continues this run.
    fn extend(&mut self, line: &RegionLine, number: usize) -> bool {
        let continues = number == self.first_line + self.regions.len()
            && line.end_ns == self.end_ns
            && line.target_id == self.target_id
            && line.scheme_idx == self.scheme_idx
            && line.nr_regions == self.nr_regions
            && line.fake == self.fake;
        if continues {
            self.regions.push(line.region);
        }
        continues
    }

    /// Gives back unused room past half the capacity (a run cut short by other lines).
    fn close(&mut self) {
        if self.regions.len() * 2 < self.regions.capacity() {
            self.regions.shrink_to_fit();
        }
    }
}

/// The runs of a piece, the first bad line if any (its number within the piece), whether the
/// piece ends in a cut line, and how many lines it has.
pub struct Piece {
    pub runs: Vec<Run>,
    pub error: Option<(usize, String)>,
    pub truncated_tail: bool,
    pub line_count: usize,
}

impl Piece {
    /// The bytes the piece holds in its runs.
    pub fn bytes(&self) -> u64 {
        bytes_of::<Run>(self.runs.capacity() as u64) + self.runs.iter().map(|r| bytes_of::<Region>(r.regions.capacity() as u64)).sum::<u64>()
    }

    pub fn region_lines(&self) -> usize {
        self.runs.iter().map(|r| r.regions.len()).sum()
    }
}

/// Parses `text`, whole lines (the last one maybe cut short when `is_last`).
pub fn parse_piece(text: &[u8], is_last: bool) -> Piece {
    let mut parser = LineParser::default();
    let mut piece = Piece { runs: Vec::new(), error: None, truncated_tail: false, line_count: 0 };
    let mut rest = text;
    while !rest.is_empty() {
        piece.line_count += 1;
        let (line, next, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        rest = next;
        match parser.parse(line) {
            Ok(None) => {}
            Ok(Some(region_line)) => {
                let number = piece.line_count;
                if !piece.runs.last_mut().is_some_and(|run| run.extend(&region_line, number)) {
                    if let Some(run) = piece.runs.last_mut() {
                        run.close();
                    }
                    piece.runs.push(Run::new(region_line, number, rest.len()));
                }
            }
            // A record killed while writing ends in a partial line: keep what came before.
            Err(_) if !complete && is_last => piece.truncated_tail = true,
            Err(reason) => {
                piece.error = Some((piece.line_count, reason));
                break;
            }
        }
    }
    if let Some(run) = piece.runs.last_mut() {
        run.close();
    }
    piece
}
