// A medal: a rounded disc with a star in relief (star.stl, shipped with the
// model), a line of text, a twisted rim and a loop for the ribbon.

/* [Face] */
// Text under the star
label = "WINNER"; // 12
// Letter height, mm
letter_size = 5; // [3:0.5:8]
// Size of the star, as a fraction of the disc
star_scale = 0.55; // [0.3:0.05:0.8]

/* [Disc] */
// Diameter, mm
diameter = 50; // [30:1:80]
// Thickness of the disc, mm
thickness = 4; // [2.5:0.5:8]
// How far the rim turns around the disc, degrees
rim_twist = 30; // [0:5:90]
// Number of ridges on the rim
ridges = 24; // [8:1:48]

/* [Hidden] */
radius = diameter / 2;
edge = 1;
$fn = 64;

module disc() {
    // minkowski with a small sphere rounds every edge of the disc
    minkowski() {
        cylinder(r = radius - 4 - edge, h = thickness - 2 * edge);
        sphere(r = edge, $fn = 16);
    }
}

module rim() {
    ridge = 2 * PI * (radius - 2) / ridges / 2;
    linear_extrude(height = thickness + 0.6, twist = rim_twist, slices = 8)
        difference() {
            circle(r = radius);
            circle(r = radius - 4.2);
        }
    for (i = [0 : ridges - 1])
        rotate([0, 0, i * 360 / ridges])
            linear_extrude(height = thickness + 0.6, twist = rim_twist, slices = 8)
                translate([radius - 0.4, 0]) circle(r = ridge / 2, $fn = 12);
}

module loop() {
    translate([0, radius + 3, 0])
        difference() {
            hull() {
                translate([0, -4, 0]) cylinder(r = 5, h = thickness);
                cylinder(r = 4, h = thickness);
            }
            translate([0, 0, -1]) cylinder(r = 2.2, h = thickness + 2);
        }
}

module star() {
    // star.stl is 40 mm across, 3 mm high, centred on the origin
    s = diameter * star_scale / 40;
    translate([0, 3, thickness - 0.6 - 0.01])
        scale([s, s, 1]) import("star.stl");
}

union() {
    translate([0, 0, edge]) disc();
    rim();
    loop();
    star();
    translate([0, -radius * 0.55, thickness - 0.61])
        linear_extrude(height = 1.2)
            text(label, size = letter_size, font = "Liberation Sans:style=Bold",
                 halign = "center", valign = "center");
}
