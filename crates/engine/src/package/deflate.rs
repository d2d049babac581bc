//! Raw deflate with encoders that live as long as their thread: reset between files, never rebuilt.
//!
//! A zlib-rs deflate state is one ~380 KB, 64-byte-aligned block. Building one per file made glibc's heap
//! grow by about that much per file (aligned blocks freed between long-lived small ones are not reused),
//! so a 2 MB tree could peak at 300 MB. Each compressing thread owns one [`Encoder`] for its whole life
//! instead, and its output never depends on what the encoder compressed before (a reset clears it all).
//!
//! A large file is cut into chunks of a fixed size and each chunk deflated on its own, as pigz does: the
//! encoder is primed with the previous chunk's last 32 KiB (so matches reach back across the cut), every
//! chunk but the last ends with a sync flush (a byte-aligned, non-final empty stored block) and the last
//! one with the final block, so the chunks joined in order are one valid deflate stream.

use flate2::{Compress, Compression, FlushCompress, Status};

use std::io;

/// How far back deflate can refer: the previous chunk's last bytes that prime the next chunk's encoder.
pub(super) const WINDOW: usize = 32 * 1024;

/// How many bytes of a file are deflated to guess whether the whole file would shrink.
const SAMPLE_BYTES: usize = 4 * 1024;

/// Files up to this size are deflated whole without a guess: the guess would cost a good part of the work.
const SAMPLE_MIN_FILE: u64 = 4 * SAMPLE_BYTES as u64;

/// The most a stored deflate block holds.
const STORED_BLOCK: usize = 65_535;

/// Smaller files are deflated without a guess: a few bytes either way.
const SMALL_SAMPLE_MIN: usize = 512;

/// Bits of order-0 entropy per byte from which a small file's bytes count as spread evenly: 512 random
/// bytes measure 7.6 (the estimate falls short of 8 on few bytes), text and code below 6, skewed media
/// that Huffman coding still shrinks by a few percent around 7.
const SPREAD_BITS: f64 = 7.5;

/// Room beyond the input that deflate may need before the caller decides to store instead: zlib's
/// `deflateBound` is a few bytes per 16 KiB block plus a constant.
pub(super) fn worst_case(len: usize) -> usize {
    len + (len >> 10) + 64
}

/// One thread's deflate state: the encoder at the build's level, and one at level 2 for the samples
/// that decide whether a file is worth deflating.
pub(super) struct Encoder {
    main: Compress,
    /// Level 2, not 1: zlib-rs's level 1 (`deflate_quick`) codes with fixed Huffman trees only, which expand
    /// skewed but compressible bytes (media with some redundancy), so it would store files that level 6
    /// still shrinks. Made on first use: a tree of text files never needs it.
    sampler: Option<Compress>,
    /// The samples' deflated bytes, only measured.
    scratch: Vec<u8>,
}

impl Encoder {
    pub(super) fn new(level: u8) -> Self {
        Self {
            main: Compress::new(Compression::new(u32::from(level)), false),
            sampler: None,
            scratch: Vec::new(),
        }
    }

    /// Appends `data` deflated as one complete stream to `out`.
    pub(super) fn whole(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.main.reset();
        run(&mut self.main, data, out, FlushCompress::Finish)
    }

    /// Appends one chunk of a larger entry to `out`: primed with `dictionary` (the previous chunk's last
    /// [`WINDOW`] bytes, empty for the first chunk), ended with a sync flush unless it is the `last`.
    pub(super) fn chunk(
        &mut self,
        dictionary: &[u8],
        data: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.main.reset();
        if !dictionary.is_empty() {
            self.main
                .set_dictionary(dictionary)
                .map_err(io::Error::other)?;
        }
        let flush = if last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        run(&mut self.main, data, out, flush)
    }

    /// Appends one chunk of a larger entry as stored deflate blocks, for a chunk whose samples do not
    /// shrink (media or compressed data inside a file that is otherwise deflated): it costs a copy instead
    /// of a deflate that gains nothing. The previous chunk ended byte-aligned, so the blocks follow it
    /// directly; they end the stream (final block) when this is the `last` chunk.
    pub(super) fn stored_chunk(data: &[u8], last: bool, out: &mut Vec<u8>) {
        let pieces = data.len().div_ceil(STORED_BLOCK).max(1);
        out.reserve(data.len() + 5 * pieces);
        for k in 0..pieces {
            let piece =
                &data[(k * STORED_BLOCK).min(data.len())..((k + 1) * STORED_BLOCK).min(data.len())];
            let len = piece.len() as u16;
            // BFINAL in bit 0, BTYPE 00 (stored) in bits 1-2, then padding to the byte boundary.
            out.push(u8::from(last && k + 1 == pieces));
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(piece);
        }
    }

    /// Whether bytes held in memory (a whole small file, a chunk) look incompressible, from the same three
    /// samples as a file read from disk.
    pub(super) fn held_looks_incompressible(&mut self, data: &[u8]) -> bool {
        self.looks_incompressible(data.len() as u64, |offset, sample| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let bytes = data
                .get(start..start.saturating_add(sample.len()))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            sample.copy_from_slice(bytes);
            Ok(())
        })
        .unwrap_or(false)
    }

    /// Whether deflating `sample` makes it smaller.
    fn sample_shrinks(&mut self, sample: &[u8]) -> bool {
        let sampler = self
            .sampler
            .get_or_insert_with(|| Compress::new(Compression::new(2), false));
        sampler.reset();
        self.scratch.clear();
        // An error here only costs the shortcut: the file is then deflated as usual.
        run(sampler, sample, &mut self.scratch, FlushCompress::Finish)
            .map_or(true, |()| self.scratch.len() < sample.len())
    }

    /// Whether a small file (under the sampled size), held whole in `data`, looks incompressible: its bytes
    /// are spread so evenly over all 256 values (small images, fonts, compressed or random data) that
    /// Huffman coding cannot gain, and such data has nothing for deflate to match either. Text and code,
    /// most of a tree, spread over far fewer values and are deflated. Measuring costs a pass over the
    /// bytes; deflating costs tens of passes, most of them building the Huffman trees of a block that is
    /// then thrown away. (A file of random bytes repeated over and over would be stored: such files do not
    /// occur in application trees.)
    pub(super) fn small_looks_incompressible(data: &[u8]) -> bool {
        if data.len() < SMALL_SAMPLE_MIN || data.len() as u64 >= SAMPLE_MIN_FILE {
            return false;
        }
        let mut counts = [0u32; 256];
        for &b in data {
            counts[usize::from(b)] += 1;
        }
        let n = data.len() as f64;
        let entropy: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum();
        entropy >= SPREAD_BITS
    }

    /// Whether a file of `len` bytes looks incompressible (already compressed media, archives, random data),
    /// judged from samples at its start, middle and end that `sample_at(offset, buf)` fills. Deflating such
    /// a file costs as much as deflating text and gains nothing, so it is stored. The start is tried first,
    /// so a compressible file costs one small fast sample; all three must fail to shrink.
    pub(super) fn looks_incompressible(
        &mut self,
        len: u64,
        mut sample_at: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<bool> {
        if len < SAMPLE_MIN_FILE {
            return Ok(false);
        }
        let mut sample = [0u8; SAMPLE_BYTES];
        let last = len - SAMPLE_BYTES as u64;
        for offset in [0, last / 2, last] {
            sample_at(offset, &mut sample)?;
            if self.sample_shrinks(&sample) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A deflate stream fed piece by piece: the manifest, written as the files go by.
pub(super) struct Stream(Compress);

impl Stream {
    pub(super) fn new(level: u8) -> Self {
        Self(Compress::new(Compression::new(u32::from(level)), false))
    }

    /// Compresses `input`, appending what deflate has ready to `out`.
    pub(super) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        run(&mut self.0, input, out, FlushCompress::None)
    }

    /// Ends the stream, appending the rest to `out`.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        run(&mut self.0, &[], out, FlushCompress::Finish)
    }
}

/// Feeds all of `input` to `c` with `flush`, appending to `out` (grown when deflate asks for room).
fn run(
    c: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    out.reserve(worst_case(input.len()));
    loop {
        let (before_in, before_out) = (c.total_in(), c.total_out());
        let status = c
            .compress_vec(input, out, flush)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(c.total_in() - before_in).unwrap_or(input.len());
        input = &input[consumed..];
        let room_left = out.len() < out.capacity();
        match (flush, status) {
            (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
            (FlushCompress::None, _) if input.is_empty() => return Ok(()),
            // zlib's rule: a flush is complete when deflate returns with output room to spare.
            (FlushCompress::Sync, Status::Ok | Status::BufError)
                if input.is_empty() && room_left =>
            {
                return Ok(());
            }
            _ => {}
        }
        if room_left && consumed == 0 && c.total_out() == before_out {
            // Room to write, yet nothing taken or given: the stream refuses this input (it was ended,
            // say), and calling again would only do the same while the buffer grows.
            return Err(io::Error::other("deflate made no progress"));
        }
        if !room_left {
            out.reserve(worst_case(input.len()).max(4096));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use std::io::Read;

    fn text(len: usize, seed: u64) -> Vec<u8> {
        let words: [&[u8]; 6] = [
            b"slot ",
            b"release ",
            b"swap ",
            b"health\n",
            b"gate ",
            b"{\"a\":1} ",
        ];
        let mut state = seed | 1;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(words[(state % 6) as usize]);
            if state.is_multiple_of(5) {
                out.extend_from_slice(&state.to_le_bytes()[..3]);
            }
        }
        out.truncate(len);
        out
    }

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        DeflateDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn chunks_joined_in_order_are_one_stream_and_match_across_the_cut() {
        // Text with a random block repeated through it: only a primed chunk finds the block from its start.
        let block = random(12 * 1024, 3);
        let mut data = Vec::new();
        for i in 0..20 {
            data.extend_from_slice(&block);
            data.extend_from_slice(&text(3000, i));
        }
        let chunk = 64 * 1024;
        let mut joined = Vec::new();
        let mut enc = Encoder::new(6);
        for (i, piece) in data.chunks(chunk).enumerate() {
            let start = i * chunk;
            let dictionary = &data[start.saturating_sub(WINDOW)..start];
            let last = start + piece.len() == data.len();
            enc.chunk(dictionary, piece, last, &mut joined).unwrap();
        }
        assert_eq!(inflate(&joined), data);
        // Priming with the previous chunk keeps the ratio close to one stream's.
        let mut unprimed = Vec::new();
        for (i, piece) in data.chunks(chunk).enumerate() {
            let last = (i + 1) * chunk >= data.len();
            enc.chunk(&[], piece, last, &mut unprimed).unwrap();
        }
        assert!(
            joined.len() + 10 * 1024 < unprimed.len(),
            "{} against {}",
            joined.len(),
            unprimed.len()
        );
        assert_eq!(inflate(&unprimed), data);
    }

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn incompressible_chunks_are_stored_blocks_inside_the_one_stream() {
        let mut data = text(150_000, 1);
        data.extend_from_slice(&random(200_000, 2));
        data.extend_from_slice(&text(150_000, 3));
        let chunk = 64 * 1024;
        let mut out = Vec::new();
        let mut enc = Encoder::new(6);
        let mut stored = 0;
        for (i, piece) in data.chunks(chunk).enumerate() {
            let start = i * chunk;
            let last = start + piece.len() == data.len();
            if enc.held_looks_incompressible(piece) {
                stored += 1;
                Encoder::stored_chunk(piece, last, &mut out);
            } else {
                let dictionary = &data[start.saturating_sub(WINDOW)..start];
                enc.chunk(dictionary, piece, last, &mut out).unwrap();
            }
        }
        assert_eq!(inflate(&out), data);
        // The random middle spans three whole chunks; text chunks are deflated.
        assert!((2..=4).contains(&stored), "{stored} chunks stored");
        assert!(out.len() < data.len() * 6 / 10, "{} bytes", out.len());
        // A stored last chunk ends the stream too, and a 64 KiB piece needs two blocks.
        let mut tail = Vec::new();
        Encoder::stored_chunk(&random(70_000, 4), true, &mut tail);
        assert_eq!(tail.len(), 70_000 + 10);
        assert_eq!(inflate(&tail), random(70_000, 4));
    }

    #[test]
    fn small_files_with_evenly_spread_bytes_look_incompressible() {
        assert!(Encoder::small_looks_incompressible(&random(600, 1)));
        assert!(Encoder::small_looks_incompressible(&random(
            16 * 1024 - 1,
            2
        )));
        assert!(!Encoder::small_looks_incompressible(&text(8000, 3)));
        // Skewed bytes (40 values): Huffman coding shrinks them, so they are deflated.
        let skewed: Vec<u8> = random(8000, 4).iter().map(|b| b % 40).collect();
        assert!(!Encoder::small_looks_incompressible(&skewed));
        // Too small to bother, and large enough for the samples instead.
        assert!(!Encoder::small_looks_incompressible(&random(511, 5)));
        assert!(!Encoder::small_looks_incompressible(&random(16 * 1024, 6)));
    }

    #[test]
    fn a_reset_encoder_gives_the_bytes_of_a_fresh_one() {
        let a = text(100_000, 1);
        let b = text(70_000, 2);
        let mut fresh = Vec::new();
        Encoder::new(6).whole(&b, &mut fresh).unwrap();
        let mut used = Encoder::new(6);
        let mut scratch = Vec::new();
        used.chunk(&a[..WINDOW], &a[WINDOW..], false, &mut scratch)
            .unwrap();
        used.whole(&a, &mut scratch).unwrap();
        let _ = used.looks_incompressible(a.len() as u64, |offset, buf| {
            let at = usize::try_from(offset).unwrap();
            buf.copy_from_slice(&a[at..at + buf.len()]);
            Ok(())
        });
        let mut again = Vec::new();
        used.whole(&b, &mut again).unwrap();
        assert!(again == fresh, "the encoder's history changed its output");
        assert_eq!(inflate(&again), b);
    }

    #[test]
    fn large_flushes_grow_the_output_until_done() {
        // Random bytes do not shrink: the output needs more than the input's length.
        let data = random(1_000_000, 9);
        for last in [false, true] {
            let mut out = Vec::new();
            Encoder::new(9).chunk(&[], &data, last, &mut out).unwrap();
            assert!(out.len() > data.len());
            if last {
                assert_eq!(inflate(&out), data);
            } else {
                // A sync flush ends on the empty stored block's marker.
                assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
            }
        }
        let mut enc = Encoder::new(6);
        let sampled = enc.looks_incompressible(data.len() as u64, |offset, buf| {
            let at = usize::try_from(offset).unwrap();
            buf.copy_from_slice(&data[at..at + buf.len()]);
            Ok(())
        });
        assert!(sampled.unwrap());
    }
}
