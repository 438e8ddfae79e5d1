"""Products made from OpenSCAD models with Customizer annotations.

``customizer`` reads a model's parameters into a JSON Schema, ``references`` the files it reads;
``openscad`` runs the ``openscad`` program (the reference renderer and the ``.csg`` export);
``csg`` and ``evaluate`` build the exported tree on manifold3d (the fast path); ``render``
picks between them.
"""
