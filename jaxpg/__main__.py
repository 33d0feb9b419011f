import sys

from jaxpg.cli import main

sys.exit(main())
