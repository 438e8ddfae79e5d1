// A ring with a word engraved around its outside. The band is a profile
// turned with rotate_extrude; each letter is cut into the surface.

/* [Engraving] */
// The word engraved around the ring
word = "FOREVER"; // 10
// Letter height, mm
letter_size = 3.2; // [2:0.1:5]
// Engraving depth, mm
depth = 0.5; // [0.3:0.1:1]
// Space between letters, mm
letter_spacing = 3.2; // [2:0.1:6]

/* [Ring] */
// Inner diameter (the finger), mm
inner_diameter = 18; // [14:0.1:24]
// Band width, mm
band_width = 6; // [3:0.5:10]
// Band thickness, mm
band_thickness = 2.2; // [1.6:0.1:3.5]
// Round the band's outer edges
comfort_fit = true;

/* [Hidden] */
$fn = 96;
inner_r = inner_diameter / 2;
outer_r = inner_r + band_thickness;
edge = comfort_fit ? 0.6 : 0;

module profile() {
    // the band's cross-section, in the XY plane with X as the radius
    translate([inner_r, 0])
        offset(r = edge, $fn = 24) offset(delta = -edge)
            square([band_thickness, band_width]);
}

module letter(c, angle) {
    rotate([0, 0, angle])
        translate([0, outer_r - depth, band_width / 2])
            rotate([90, 0, 180])
                linear_extrude(height = depth + 1)
                    text(c, size = letter_size, font = "Liberation Sans:style=Bold",
                         halign = "center", valign = "center", $fn = 24);
}

step = letter_spacing / outer_r * 180 / PI;
difference() {
    rotate_extrude() profile();
    for (i = [0 : len(word) - 1])
        letter(word[i], (i - (len(word) - 1) / 2) * step);
}
