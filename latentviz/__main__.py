from latentviz.cli import main

raise SystemExit(main())
