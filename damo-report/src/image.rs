//! Images without gnuplot: reports draw SVG, and PNG is that SVG rasterized (resvg, with the
//! system's fonts for the labels).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("unsupported image type {0:?} (use .svg or .png)")]
    UnsupportedType(String),
    #[error("failed to render the image: {0}")]
    Render(String),
    #[error(transparent)]
    Write(#[from] damo_record::output_file::OutputError),
}

/// Rasterizes an SVG document into PNG bytes.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, ImageError> {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    // fontdb maps the generic families to fonts it may not have; DejaVu (fonts-dejavu-core,
    // which scripts/setup.sh installs) is on every Debian system that has any font.
    options.fontdb_mut().set_sans_serif_family("DejaVu Sans");
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| ImageError::Render(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| ImageError::Render(format!("bad image size {}x{}", size.width(), size.height())))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| ImageError::Render(e.to_string()))
}

/// Writes `svg` to `path` as SVG or PNG, chosen by the file's extension.
pub fn write_svg_as(path: &Path, svg: &str) -> Result<(), ImageError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let bytes = match ext.as_str() {
        "svg" => svg.as_bytes().to_vec(),
        "png" => svg_to_png(svg)?,
        _ => return Err(ImageError::UnsupportedType(ext)),
    };
    // As any report output: a temporary file renamed into place, never through a symlink.
    Ok(damo_record::output_file::write(path, &bytes, damo_record::output_file::OutputOptions::REPORT)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_the_svg_size_and_colors() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect x="0" y="0" width="10" height="10" fill="#ff0000"/></svg>"##;
        let png = svg_to_png(svg).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (20, 10));
        assert_eq!(pixmap.pixel(2, 2).unwrap().red(), 255);
        assert_eq!(pixmap.pixel(15, 2).unwrap().green(), 255, "white background");
    }
}
