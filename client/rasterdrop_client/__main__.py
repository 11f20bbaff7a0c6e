from rasterdrop_client.cli import main

main()
