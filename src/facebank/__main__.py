from facebank.cli import main

main()
