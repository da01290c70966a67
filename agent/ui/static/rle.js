// COCO run-length encoded masks, decoded in the browser (the server sends Region.mask as {"size": [h, w], "counts"}).
//
// COCO runs are column-major (Fortran order): pixel (row y, column x) is number x * h + y.  The runs alternate
// background, foreground, background, ..., starting with background (a mask that starts with foreground has a first
// run of 0).  `counts` is either that list of run lengths ("uncompressed RLE") or a string ("compressed RLE").

/**
 * The run lengths of a compressed COCO RLE string (pycocotools' rleFrString, maskApi.c).
 *
 * Each number is written in 5-bit groups, least significant first, as characters 48 + group (0x20 marks "another
 * group follows"; in the last group 0x10 is the sign bit).  From the third number on, the value written is the
 * difference to the number two places before it (runs of the same kind tend to have similar lengths).
 * Counts stay far below 2^30 for any image the server accepts (40 Mpx), so 32-bit shifts are exact.
 */
export function countsFromString(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error("RLE string ends inside a number");
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k); // sign-extend a negative difference
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    if (x < 0) throw new Error(`RLE string decodes to a negative run (${x})`);
    counts.push(x);
  }
  return counts;
}

/**
 * Decode `{size: [h, w], counts: string | number[]}` into `{height, width, data}`, where `data` is a row-major
 * Uint8Array of h * w zeros and ones (data[y * w + x]).  Throws when the runs do not cover exactly h * w pixels.
 */
export function decodeRle(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? countsFromString(rle.counts) : rle.counts;
  const total = height * width;
  const data = new Uint8Array(total);
  let pos = 0; // column-major pixel number
  for (let i = 0; i < counts.length; i += 1) {
    const run = counts[i];
    if (pos + run > total) throw new Error(`RLE runs cover more than ${height}x${width} pixels`);
    if (i % 2 === 1) {
      for (let j = pos; j < pos + run; j += 1) {
        const x = Math.floor(j / height);
        const y = j - x * height;
        data[y * width + x] = 1; // transpose column-major -> row-major
      }
    }
    pos += run;
  }
  if (pos !== total) throw new Error(`RLE runs cover ${pos} of ${total} pixels`);
  return { height, width, data };
}

/**
 * A PNG data URL of the mask at its own size: foreground pixels in `rgb` with opacity `alpha` (0..1), the rest
 * transparent.  The overlay stretches it over the displayed image, so it is drawn once per mask, not per resize.
 */
export function maskToDataUrl(mask, rgb, alpha) {
  const canvas = document.createElement("canvas");
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(mask.width, mask.height);
  const a = Math.round(alpha * 255);
  for (let i = 0; i < mask.data.length; i += 1) {
    if (!mask.data[i]) continue;
    image.data[4 * i] = rgb[0];
    image.data[4 * i + 1] = rgb[1];
    image.data[4 * i + 2] = rgb[2];
    image.data[4 * i + 3] = a;
  }
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}
