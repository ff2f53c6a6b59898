from sindri_jupyter.cli import main

raise SystemExit(main())
