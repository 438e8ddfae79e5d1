// A name tag: a flat plate with a hole for a key ring and the name standing
// out of its face. Customizer annotations make each setting a parameter.

/* [Text] */
// The name on the tag
name = "Ada Lovelace"; // 16
// Height of the capital letters, mm
letter_size = 7; // [4:0.5:14]
// Letter style
style = "Bold"; // [Regular, Bold, Italic, Bold Italic]
// How far the letters stand out, mm
relief = 1; // [0.4:0.2:3]

/* [Plate] */
// Length of the plate, mm
length = 80; // [30:1:140]
// Width of the plate, mm
width = 22; // [12:1:40]
// Thickness of the plate, mm
thickness = 2.4; // [1.2:0.2:6]
// Shape of the corners
corners = "round"; // [round:Rounded, chamfer:Chamfered, square:Square]
// A hole for a key ring
hole = true;

/* [Hidden] */
font = str("Liberation Sans:style=", style);
corner_radius = 4;
hole_radius = 2.5;
$fn = 48;

module outline() {
    inner = [length - 2 * corner_radius, width - 2 * corner_radius];
    if (corners == "round")
        offset(r = corner_radius) square(inner, center = true);
    else if (corners == "chamfer")
        offset(delta = corner_radius, chamfer = true) square(inner, center = true);
    else
        square([length, width], center = true);
}

module plate() {
    difference() {
        linear_extrude(height = thickness) outline();
        if (hole)
            translate([-length / 2 + corner_radius + hole_radius, 0, -1])
                cylinder(h = thickness + 2, r = hole_radius);
    }
}

plate();
text_shift = hole ? corner_radius + hole_radius : 0;
translate([text_shift, 0, thickness - 0.01])
    linear_extrude(height = relief + 0.01)
        text(name, size = letter_size, font = font, halign = "center", valign = "center");
